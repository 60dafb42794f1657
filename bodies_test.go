// SPDX-License-Identifier: MIT

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// zeros is n bytes of request body made as they are read.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	m := min(int64(len(p)), z.n)
	clear(p[:m])
	z.n -= m
	return int(m), nil
}

// 200 concurrent 32 MiB bodies: the daemon holds at most max_buffered_mb
// of them (256 MiB by default) and answers the rest 429 overloaded with
// Retry-After, and its heap stays within that budget.
func TestRequestBodiesHaveATotalBudget(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	secret := u.canary("sk-")
	fake.on(secret, func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		time.Sleep(500 * time.Millisecond) // holds the body in the daemon meanwhile
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[]}`)
		return true
	})
	base, token := u.oneKey(fake.URL, secret)

	ctl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(u.runtimeDir(), "sock"))
	}}}
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			resp, err := ctl.Get("http://llmkey/debug/memstats")
			if err != nil {
				continue
			}
			var ms struct {
				HeapInuse uint64 `json:"heap_inuse"`
			}
			json.NewDecoder(resp.Body).Decode(&ms)
			resp.Body.Close()
			for old := peak.Load(); ms.HeapInuse > old && !peak.CompareAndSwap(old, ms.HeapInuse); old = peak.Load() {
			}
		}
	}()

	var ok, overloaded, other atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", base+"/openai/chat/completions", &zeros{32 << 20})
			req.ContentLength = 32 << 20
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				other.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				ok.Add(1)
			case resp.StatusCode == 429 && resp.Header.Get("X-Llmkey-Error") == "overloaded" && resp.Header.Get("Retry-After") != "":
				overloaded.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	close(done)
	t.Logf("served %d, overloaded %d, other %d; daemon heap peak %d MiB", ok.Load(), overloaded.Load(), other.Load(), peak.Load()>>20)
	if ok.Load() == 0 || overloaded.Load() == 0 || ok.Load()+overloaded.Load()+other.Load() != 200 {
		t.Errorf("served %d, overloaded %d, other %d", ok.Load(), overloaded.Load(), other.Load())
	}
	if budget := uint64(256+32) << 20; peak.Load() > budget {
		t.Errorf("the daemon's heap reached %d MiB with 256 MiB of bodies allowed", peak.Load()>>20)
	}
	if r := u.llmkey("status"); strings.Contains(r.stdout, "not running") {
		t.Errorf("the daemon is gone: %v", r)
	}
}
