// SPDX-License-Identifier: MIT

package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The control socket serves Go's profiles as net/http/pprof does, and
// the default mux has none of them.
func TestProfilesOnTheControlSocket(t *testing.T) {
	d := testDaemon(t, "")
	srv := httptest.NewServer(d.controlHandler())
	defer srv.Close()
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, _, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "heap (") || !strings.Contains(body, "goroutine (") {
		t.Errorf("index: %d %s", code, body)
	}
	if code, ct, body := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.HasPrefix(ct, "text/plain") || !strings.HasPrefix(body, "goroutine profile: total") {
		t.Errorf("goroutine: %d %s %.80s", code, ct, body)
	}
	if code, ct, body := get("/debug/pprof/heap?gc=1"); code != 200 || ct != "application/octet-stream" || len(body) == 0 || body[0] != 0x1f {
		t.Errorf("heap (gzipped protobuf): %d %s %d bytes", code, ct, len(body))
	}
	if code, ct, body := get("/debug/pprof/profile?seconds=1"); code != 200 || ct != "application/octet-stream" || len(body) == 0 || body[0] != 0x1f {
		t.Errorf("cpu profile: %d %s %d bytes", code, ct, len(body))
	}
	if code, _, body := get("/debug/pprof/nosuch"); code != 404 || !strings.Contains(body, "/debug/pprof/ lists them") {
		t.Errorf("unknown profile: %d %s", code, body)
	}
	if _, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", "/debug/pprof/", nil)); pattern != "" {
		t.Errorf("the default mux serves profiles: %q", pattern)
	}
}
