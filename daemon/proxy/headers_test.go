// SPDX-License-Identifier: MIT

package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A path that would climb out of base_url is refused, however escaped;
// dots inside a name are not segments.
func TestDotSegmentsRefused(t *testing.T) {
	reached := 0
	_, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	for _, p := range []string{"/openai/../admin", "/openai/%2e%2e/admin", "/openai/v1/%2E./x", "/openai/a/..%2fb", "/openai/./chat", "/openai/a%5c..%5cb"} {
		req, _ := http.NewRequest("POST", url+"/x", strings.NewReader(`{}`))
		req.URL.RawPath, req.URL.Path = p, p
		req.URL.Opaque = "//" + req.URL.Host + p // sent as written
		req.Header.Set("Authorization", "Bearer llmk-local-test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("X-Llmkey-Error") != "bad-path" {
			t.Errorf("%s: %d %q", p, resp.StatusCode, resp.Header.Get("X-Llmkey-Error"))
		}
	}
	if reached != 0 {
		t.Errorf("%d dot-segment paths reached the upstream", reached)
	}
	for _, p := range []string{"/v1/models/gemini-2.5-pro:generateContent", "/files/a.b..c", "/x/...", "/x/.well-known"} {
		if dotSegments(p) {
			t.Errorf("%s is refused", p)
		}
	}
}

// /livez and /healthz take the host and origin checks: a page that
// rebinds a name to 127.0.0.1 cannot read them.
func TestHealthEndpointsCheckHostAndOrigin(t *testing.T) {
	_, url := newTestProxy(t, http.NotFoundHandler())
	for _, path := range []string{"/livez", "/healthz"} {
		for _, tt := range []struct {
			host, origin string
			status       int
		}{{"", "", 200}, {"evil.example:5565", "", 403}, {"", "https://evil.example", 403}} {
			req, _ := http.NewRequestWithContext(context.Background(), "GET", url+path, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("%s host %q origin %q: %d, want %d", path, tt.host, tt.origin, resp.StatusCode, tt.status)
			}
		}
	}
}
