// SPDX-License-Identifier: MIT

package daemon

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
)

// tokenDaemon is testDaemon with its scoped tokens loaded, as at start.
func tokenDaemon(t *testing.T) *Daemon {
	t.Helper()
	d := testDaemon(t, "")
	d.loadTokens()
	d.proxy.Grants = d.tokens.lookup
	return d
}

// shortLived is a process that runs until stop is called, which reaps it.
func shortLived(t *testing.T) (pid int, stop func()) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }
}

// Three thousand scoped tokens issued and ended (their processes have
// exited) or expired leave tokens.json small all along: each issue
// removes the tokens that are no longer live, so that it writes about as
// many as are in use, however many came before.
func TestTokensFileStaysSmall(t *testing.T) {
	d := tokenDaemon(t)
	clk := d.clock.(*fakeClock)
	path := filepath.Join(d.opts.Paths.StateDir, "tokens.json")
	var pid int
	stop := func() {}
	largest := int64(0)
	for i := range 3000 {
		req := control.TokenRequest{Keys: []string{"openai/a"}, Label: "daily"}
		if i%2 == 0 {
			req.TTL = "1m"
		} else {
			if i%10 == 1 {
				stop()
				pid, stop = shortLived(t)
			}
			req.EndWithCaller = true
		}
		tok, err := d.issue(req, pid)
		if err != nil {
			t.Fatal(err)
		}
		if req.EndWithCaller && (tok.PID != pid || tok.Expires != nil) {
			t.Fatalf("a token for pid %d: %+v", pid, tok.TokenInfo)
		}
		clk.advance(time.Minute)
		if fi, err := os.Stat(path); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	stop()
	if _, err := d.issue(control.TokenRequest{Keys: []string{"openai/a"}}, 0); err != nil {
		t.Fatal(err)
	}
	var kept []issued
	if err := json.Unmarshal([]byte(readTestFile(t, path)), &kept); err != nil || len(kept) != 1 {
		t.Errorf("tokens.json after 3000 tokens that ended and one more: %d tokens (%v)", len(kept), err)
	}
	if largest >= 64<<10 {
		t.Errorf("tokens.json grew to %d bytes", largest)
	}
}

// A token bound to a process serves while it runs and is refused once it
// has exited, also when its pid is given to another process; listed, it
// says so. A restart keeps the live ones and drops the others.
func TestTokenEndsWithItsProcess(t *testing.T) {
	d := tokenDaemon(t)
	pid, stop := shortLived(t)
	tok, err := d.issue(control.TokenRequest{Keys: []string{"openai/a"}, EndWithCaller: true}, pid)
	if err != nil {
		t.Fatal(err)
	}
	other, err := d.issue(control.TokenRequest{Keys: []string{"openai/a"}, EndWithCaller: true}, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.tokens.lookup(tok.Token); !ok {
		t.Fatal("the token of a running process is refused")
	}
	stop()
	if _, ok := d.tokens.lookup(tok.Token); ok {
		t.Error("the token of a process that has exited still serves")
	}
	states := map[string]control.TokenState{}
	for _, in := range d.tokenList() {
		states[in.ID] = in.State
	}
	if states[tok.ID] != control.TokenEnded || states[other.ID] != control.TokenLive {
		t.Errorf("token list states: %v", states)
	}

	// The same pid, another process: the start time tells them apart.
	d.tokens.mu.Lock()
	d.tokens.byHash[tokenHash(other.Token)].Started += "0"
	d.tokens.mu.Unlock()
	if _, ok := d.tokens.lookup(other.Token); ok {
		t.Error("a token serves a process that took its process's pid")
	}
	d.tokens.mu.Lock()
	d.tokens.byHash[tokenHash(other.Token)].Started = startOf(t, other.PID)
	d.tokens.gen++
	d.tokens.mu.Unlock()
	if err := d.tokens.save(true); err != nil {
		t.Fatal(err)
	}

	d.loadTokens()
	list := d.tokenList()
	if len(list) != 1 || list[0].ID != other.ID || list[0].State != control.TokenLive {
		t.Errorf("after a restart: %+v", list)
	}
}

// startOf is when process pid started, as tokens record it.
func startOf(t *testing.T, pid int) string {
	t.Helper()
	s, err := procStart(pid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A tokens.json from before tokens had an end: its tokens end as env's
// do, 7 days after they were issued, so that a file grown large shrinks
// at the first start.
func TestTokensFromBeforeLifetimesEnd(t *testing.T) {
	d := testDaemon(t, "")
	now := d.clock.Now().UTC()
	old := []map[string]any{
		{"id": "aaaaaaaaaaaa", "hash": "aaaaaaaaaaaa0", "keys": []string{"openai/a"}, "created": now.Add(-8 * 24 * time.Hour)},
		{"id": "bbbbbbbbbbbb", "hash": "bbbbbbbbbbbb0", "keys": []string{"openai/a"}, "created": now.Add(-time.Hour)},
	}
	b, _ := json.Marshal(old)
	os.MkdirAll(d.opts.Paths.StateDir, 0o700)
	path := filepath.Join(d.opts.Paths.StateDir, "tokens.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d.loadTokens()
	list := d.tokenList()
	if len(list) != 1 || list[0].ID != "bbbbbbbbbbbb" || list[0].State != control.TokenLive || !list[0].Expires.Equal(now.Add(-time.Hour+control.DefaultTokenTTL)) {
		t.Errorf("after loading tokens without an end: %+v", list)
	}
	if f := readTestFile(t, path); strings.Contains(f, "aaaaaaaaaaaa") {
		t.Errorf("tokens.json still holds the token that ended:\n%s", f)
	}
}

// Without a process to end with (env's, or a caller the system does not
// name), a token ends at the default expiry; --expires wins over both.
func TestTokenLifetimes(t *testing.T) {
	d := tokenDaemon(t)
	now := d.clock.Now().UTC()
	for _, tt := range []struct {
		req    control.TokenRequest
		caller int
		want   time.Duration
	}{
		{control.TokenRequest{Keys: []string{"openai/a"}}, os.Getpid(), control.DefaultTokenTTL},
		{control.TokenRequest{Keys: []string{"openai/a"}, EndWithCaller: true}, 0, control.DefaultTokenTTL},
		{control.TokenRequest{Keys: []string{"openai/a"}, EndWithCaller: true, TTL: "8h"}, os.Getpid(), 8 * time.Hour},
	} {
		tok, err := d.issue(tt.req, tt.caller)
		if err != nil {
			t.Fatal(err)
		}
		if tok.PID != 0 || tok.Expires == nil || !tok.Expires.Equal(now.Add(tt.want)) {
			t.Errorf("%+v from pid %d: %+v", tt.req, tt.caller, tok.TokenInfo)
		}
	}
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
