// SPDX-License-Identifier: MIT

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A client that trickles its body, or stops reading its answer, is cut
// after client_timeout: it does not hold its slot and its key's
// max_concurrent lease for ever.
func TestSlowClientsAreCut(t *testing.T) {
	reached := make(chan struct{}, 10)
	d, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		reached <- struct{}{}
		w.Header().Set("Content-Type", "text/event-stream")
		event := "data: " + strings.Repeat("x", 16<<10) + "\n\n"
		for range 8 << 10 { // 128 MiB: more than any socket buffer holds
			if _, err := io.WriteString(w, event); err != nil {
				return
			}
		}
	}), `client_timeout = "300ms"`)
	addr := strings.TrimPrefix(url, "http://")
	waitIdle := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); d.InFlight() > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d in flight", what, d.InFlight())
			}
		}
		views, _, _ := d.pools["openai"].View()
		if views[0].InFlight != 0 {
			t.Fatalf("%s: the key still has %d in flight", what, views[0].InFlight)
		}
	}

	// A body of 100 bytes, sent one byte every 100 ms.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /openai/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer llmk-local-test\r\nContent-Length: 100\r\n\r\n")
	start := time.Now()
	go func() {
		for range 100 {
			if _, err := c.Write([]byte("{")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for time.Since(start) < 200*time.Millisecond || d.InFlight() > 0 {
		if time.Since(start) > 3*time.Second {
			t.Fatal("a trickling body held its slot past client_timeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-reached:
		t.Error("a trickled body reached the upstream")
	default:
	}

	// A stream whose client reads its first bytes, then nothing.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(c2, "POST /openai/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer llmk-local-test\r\nContent-Length: 2\r\n\r\n{}")
	if _, err := bufio.NewReader(c2).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	<-reached
	waitIdle("a client that stopped reading")
}
