// SPDX-License-Identifier: MIT

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// heldStream is an upstream answer that sends one event, then holds the
// stream open until release is closed.
type heldStream struct {
	sent    bool
	release <-chan struct{}
}

func (b *heldStream) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "data: {\"choices\":[]}\n\n"), nil
	}
	<-b.release
	return 0, io.EOF
}

func (b *heldStream) Close() error { return nil }

type heldUpstream struct{ release chan struct{} }

func (u heldUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header: http.Header{"Content-Type": {"text/event-stream"}}, ContentLength: -1,
		Body: &heldStream{release: u.release}}, nil
}

// An open stream's handler goroutine holds an 8 KiB stack: the answer
// streams from ServeHTTP's frame, and net/http's header write (a deep
// frame) runs beside the copy, not under the attempt loop. Measured as
// stack in use per open stream, with the server's own per-connection
// goroutines and nothing else: under 13 KiB holds it at 8 KiB for the
// handler (16 KiB, the next size, would be over 18).
func TestOpenStreamStack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's frames are larger; .ci/run runs this test without it")
	}
	cfg, err := state.Parse("k.toml", []byte("[provider.openai]\nbase_url = \"http://upstream.invalid/v1\"\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"sk-aaaaaaaaaaaaaaaaaaaaaaaa\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	h := &Handler{Token: "llmk-local-test", Clock: systemClock{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Transport: heldUpstream{release: release}, Usage: &testUsage{rows: map[state.UsageKey]state.Counts{}}, Events: noEvents{}}
	snap := Build(cfg, nil, func(name string) *rotate.Pool { return rotate.NewPool(name, systemClock{}) }, nil)
	h.Snapshot = func() *Snapshot { return snap }
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	const streams = 300
	stackInUse := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.StackInuse
	}
	before := stackInUse()
	var conns []net.Conn
	defer func() {
		close(release)
		for _, c := range conns {
			c.Close()
		}
	}()
	// The client side is this goroutine alone, so that every other
	// goroutine's stack is the server's.
	for range streams {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /openai/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer llmk-local-test\r\n"+
			"Content-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"stream\":true}")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		rd := bufio.NewReader(c)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("a stream did not open: %v", err)
			}
			if strings.HasPrefix(line, "data: ") {
				break // the first event: the stream is open
			}
		}
	}
	after := stackInUse()
	per := float64(after-before) / streams / 1024
	t.Logf("stack in use per open stream: %.1f KiB (%d streams)", per, streams)
	if per >= 13 {
		t.Errorf("an open stream holds %.1f KiB of stack; the handler's should stay at 8 KiB (see ServeHTTP)", per)
	}
}
