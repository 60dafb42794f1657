// SPDX-License-Identifier: MIT

package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

const testSecret = "sk-proj-SECRETaaaaaaaaaaaaaaaaaaaaaaaaa"

// fakeClock is the daemon's one clock in tests: they move it instead of
// sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testDaemon is a daemon on a fake clock with one key, openai/a, whose
// upstream is upstreamURL; nothing is bound, and its state dir is a
// temporary one.
func testDaemon(t testing.TB, upstreamURL string) *Daemon {
	t.Helper()
	if upstreamURL == "" {
		upstreamURL = "http://127.0.0.1:1"
	}
	cfg, err := state.Parse("k.toml", []byte(fmt.Sprintf("[provider.openai]\nbase_url = \"%s/v1\"\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = %q\n", upstreamURL, testSecret)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := newDaemon(Options{Paths: state.Paths{Keyfile: filepath.Join(dir, "keys.toml"), StateDir: filepath.Join(dir, "state"), RuntimeDir: filepath.Join(dir, "run")},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, &fakeClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)})
	d.proxy.Token = "llmk-local-test"
	d.mu.Lock()
	if err := d.publish(cfg, nil); err != nil {
		t.Fatal(err)
	}
	d.mu.Unlock()
	return d
}

// A key disabled for an hour comes back when the daemon's clock says the
// hour is over: status, the control API and rotation read one clock.
func TestDisableForEndsOnTheDaemonsClock(t *testing.T) {
	d := testDaemon(t, "")
	clk := d.clock.(*fakeClock)
	srv := httptest.NewServer(d.controlHandler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/keys/openai/a/disable", "application/json", strings.NewReader(`{"for":"1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	var ks control.KeyStatus
	json.NewDecoder(resp.Body).Decode(&ks)
	resp.Body.Close()
	if ks.State != "disabled" || ks.CooldownSeconds != 3600 {
		t.Fatalf("after disable --for 1h: %+v", ks)
	}
	clk.advance(59 * time.Minute)
	if k := d.status().Providers["openai"].Keys[0]; k.State != "disabled" || k.CooldownSeconds != 60 {
		t.Fatalf("a minute before: %+v", k)
	}
	clk.advance(time.Minute)
	st := d.status()
	if k := st.Providers["openai"].Keys[0]; k.State != "ready" || len(st.Problems) != 0 {
		t.Fatalf("an hour later: %+v %v", k, st.Problems)
	}
}
