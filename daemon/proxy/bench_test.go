// SPDX-License-Identifier: MIT

package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/daemon/proxy/bare"
)

// The proxy path in-process: a fake upstream, the real handler with its
// token check, key choice, limits, usage accounting and logging. Run with
//
//	go test -run XXX -bench 'Proxy|Bare' -benchmem ./daemon

const (
	benchChat   = `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
	benchEvent  = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}` + "\n\n"
	benchUsage  = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":10,"total_tokens":13}}` + "\n\ndata: [DONE]\n\n"
	benchEvents = 10
)

func benchUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			for range benchEvents {
				io.WriteString(w, benchEvent)
				w.(http.Flusher).Flush()
			}
			io.WriteString(w, benchUsage)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, benchChat)
	})
}

func benchProxy(b *testing.B, stream bool) {
	_, url := newTestProxy(b, benchUpstream())
	benchLoad(b, url, stream)
}

// bareProxy serves bare.Proxy, the floor, in front of the same upstream.
func bareProxy(b *testing.B) string {
	up := httptest.NewServer(benchUpstream())
	b.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	srv := httptest.NewServer(bare.Proxy(target, "Bearer "+testSecret, NewTransport()))
	b.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkBareChat and BenchmarkBareStream are the same loads through
// the bare reverse proxy.
func BenchmarkBareChat(b *testing.B)   { benchLoad(b, bareProxy(b), false) }
func BenchmarkBareStream(b *testing.B) { benchLoad(b, bareProxy(b), true) }

func benchLoad(b *testing.B, base string, stream bool) {
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	if stream {
		body = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer llmk-local-test")
			if stream {
				req.Header.Set("Accept", "text/event-stream")
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkProxyChat is a small non-streamed chat completion. ns/op and
// allocs/op include the fake upstream and the client, which share the
// process: compare runs, not absolute numbers.
func BenchmarkProxyChat(b *testing.B) { benchProxy(b, false) }

// BenchmarkProxyStream is a streamed chat completion of 11 events.
func BenchmarkProxyStream(b *testing.B) { benchProxy(b, true) }
