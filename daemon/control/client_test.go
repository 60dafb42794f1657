// SPDX-License-Identifier: MIT

package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmkey/llmkey/state"
)

// call is one request the test server received.
type call struct {
	Method, Path string
	Body         string
}

// server is a control API served on a UNIX socket in a runtime dir of
// its own, as the daemon serves it; it records the calls and answers
// each path from answers (status and body), or 404.
type server struct {
	paths state.Paths
	mu    sync.Mutex
	calls []call
}

type answer struct {
	status int
	body   string
}

func serve(t *testing.T, answers map[string]answer) *server {
	t.Helper()
	dir, err := os.MkdirTemp("", "lkc") // short: a socket's path has a limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &server{paths: state.Paths{RuntimeDir: dir, StateDir: dir, Keyfile: filepath.Join(dir, "keys.toml")}}
	ln, err := net.Listen("unix", s.paths.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.calls = append(s.calls, call{r.Method, r.URL.EscapedPath(), string(b)})
		s.mu.Unlock()
		a, ok := answers[r.Method+" "+r.URL.EscapedPath()]
		if !ok {
			a = answer{404, `{"error":"no such call","hint":"upgrade llmkey"}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

func (s *server) lastCall() call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return call{}
	}
	return s.calls[len(s.calls)-1]
}

// Each call of the client goes to its versioned path with its method and
// body, and decodes the answer's JSON into the API's types: the version
// the daemon runs comes through for the CLI's check.
func TestClientCallsAndShapes(t *testing.T) {
	started := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	s := serve(t, map[string]answer{
		"GET /v1/status": {200, `{"running":true,"pid":42,"version":"1.2.3","proxy_url":"http://127.0.0.1:5565","in_flight":1,"draining":false,
			"started_at":"2026-11-24T10:00:00Z","keyfile":{"path":"/k.toml","loaded_at":"2026-11-24T10:00:00Z"},
			"providers":{"openai":{"kind":"openai","base_url":"https://api.openai.com/v1","strategy":"round-robin","circuit":"closed","circuit_seconds":0,
			"keys":[{"provider":"openai","name":"work","fingerprint":"ab12","state":"cooling","cooldown_seconds":4.5,"in_flight":0,
			"requests_last_minute":3,"tokens_last_minute":30,"requests_today":9,"tokens_today":90,"recent_failures":[{"at":"2026-11-24T10:00:00Z","class":"rate_limited","status":429,"reason":"slow down"}],
			"affinity_hits":0,"affinity_moves":0,"cache_read_tokens_today":0}],"sessions":0}},
			"log":{"journal_unit":"llmkey.service"},"spawned":true,"problems":[]}`},
		"GET /v1/env":                        {200, `{"proxy_url":"http://127.0.0.1:5565","token":"llmk-local-x","providers":["openai"],"version":"1.2.3","keyfile":"/k.toml","problems":["p"]}`},
		"GET /v1/usage":                      {200, `{"rows":[{"day":"2026-11-24","provider":"openai","key":"work","fingerprint":"ab12","model":"gpt-4o","requests":2,"successes":2,"input_tokens":10,"output_tokens":5,"cache_read_tokens":0,"cache_write_tokens":0,"reasoning_tokens":0}],"pricing":{}}`},
		"POST /v1/reload":                    {200, `{"running":true,"providers":{},"problems":[]}`},
		"POST /v1/stop":                      {202, ``},
		"POST /v1/keys/openai/a%20b/disable": {200, `{"provider":"openai","name":"a b","fingerprint":"cd34","state":"disabled","recent_failures":[]}`},
		"POST /v1/keys/openai/work/enable":   {200, `{"provider":"openai","name":"work","fingerprint":"ab12","state":"ready","recent_failures":[]}`},
		"POST /v1/tokens":                    {200, `{"token":"llmk-scoped-y","id":"t1","label":"ci","keys":["openai/work"],"created":"2026-11-24T10:00:00Z"}`},
		"GET /v1/tokens":                     {200, `[{"id":"t1","label":"ci","keys":["openai/work"],"created":"2026-11-24T10:00:00Z","expired":true}]`},
		"POST /v1/tokens/t%2F1%20x/revoke":   {200, `{}`},
	})
	c, ctx := NewClient(s.paths), context.Background()
	want := func(method, path, body string) {
		t.Helper()
		if got := s.lastCall(); got != (call{method, path, body}) {
			t.Errorf("call %+v, want %s %s %q", got, method, path, body)
		}
	}

	st, err := c.Status(ctx)
	want("GET", "/v1/status", "")
	k := st.Providers["openai"].Keys
	switch {
	case err != nil:
		t.Fatal(err)
	case !st.Running || st.PID != 42 || st.Version != "1.2.3" || !st.StartedAt.Equal(started) || st.Keyfile.Path != "/k.toml" || !st.Spawned:
		t.Errorf("status: %+v", st)
	case st.Log == nil || st.Log.JournalUnit != "llmkey.service" || len(k) != 1 || k[0].CooldownSeconds != 4.5 || k[0].RequestsMinute != 3 || k[0].Failures[0].Status != 429:
		t.Errorf("status: %+v %+v", st.Log, k)
	}
	e, err := c.Env(ctx)
	want("GET", "/v1/env", "")
	if err != nil || !reflect.DeepEqual(*e, Env{ProxyURL: "http://127.0.0.1:5565", Token: "llmk-local-x", Providers: []string{"openai"}, Version: "1.2.3", Keyfile: "/k.toml", Problems: []string{"p"}}) {
		t.Errorf("env: %+v %v", e, err)
	}
	u, err := c.Usage(ctx)
	want("GET", "/v1/usage", "")
	if err != nil || len(u.Rows) != 1 || u.Rows[0].Key != "work" || u.Rows[0].Output != 5 {
		t.Errorf("usage: %+v %v", u, err)
	}
	if st, err := c.Reload(ctx); err != nil || !st.Running {
		t.Errorf("reload: %+v %v", st, err)
	}
	want("POST", "/v1/reload", "")
	if err := c.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	want("POST", "/v1/stop", "")
	if ks, err := c.KeyAction(ctx, "openai", "a b", "disable", time.Hour); err != nil || ks.State != "disabled" {
		t.Errorf("disable: %+v %v", ks, err)
	}
	want("POST", "/v1/keys/openai/a%20b/disable", `{"for":"1h0m0s"}`)
	if ks, err := c.KeyAction(ctx, "openai", "work", "enable", 0); err != nil || ks.State != "ready" {
		t.Errorf("enable: %+v %v", ks, err)
	}
	want("POST", "/v1/keys/openai/work/enable", "")
	tok, err := c.IssueToken(ctx, TokenRequest{Keys: []string{"openai/work"}, Label: "ci", TTL: "8h0m0s"})
	want("POST", "/v1/tokens", `{"keys":["openai/work"],"label":"ci","ttl":"8h0m0s"}`)
	if err != nil || tok.Token != "llmk-scoped-y" || tok.ID != "t1" || !reflect.DeepEqual(tok.Keys, []string{"openai/work"}) {
		t.Errorf("issue: %+v %v", tok, err)
	}
	if list, err := c.Tokens(ctx); err != nil || len(list) != 1 || !list[0].Expired || list[0].Label != "ci" {
		t.Errorf("tokens: %+v %v", list, err)
	}
	want("GET", "/v1/tokens", "")
	if _, err := c.RevokeToken(ctx, "t/1 x"); err != nil {
		t.Errorf("revoke: %v", err)
	}
	want("POST", "/v1/tokens/t%2F1%20x/revoke", "")
}

// The daemon's refusals come back as *APIError with its message and
// hint; an answer that is not the API's is said with its status and
// path, and a body that does not decode with the path.
func TestClientMapsTheDaemonsErrors(t *testing.T) {
	s := serve(t, map[string]answer{
		"GET /v1/status":  {500, "panic: oops"},
		"GET /v1/env":     {200, `{"proxy_url":`},
		"POST /v1/reload": {400, `{"error":"the keyfile has an error at line 3","hint":"fix line 3"}`},
	})
	c, ctx := NewClient(s.paths), context.Background()
	_, err := c.Reload(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Error() != "the keyfile has an error at line 3" || ae.HintText() != "fix line 3" {
		t.Errorf("a refusal: %#v", err)
	}
	if _, err := c.RevokeToken(ctx, "t1"); !errors.As(err, &ae) || ae.Msg != "no such call" || ae.Hint != "upgrade llmkey" {
		t.Errorf("an unknown call: %#v", err)
	}
	if _, err := c.Status(ctx); err == nil || err.Error() != "daemon answered 500 Internal Server Error to /v1/status: panic: oops" {
		t.Errorf("not the API's answer: %v", err)
	}
	if _, err := c.Env(ctx); err == nil || !strings.HasPrefix(err.Error(), "read the daemon's answer to /v1/env: ") {
		t.Errorf("a body that does not decode: %v", err)
	}
}

// No daemon is ErrNotRunning: no runtime dir, no socket, or a socket no
// one listens on (a daemon killed with SIGKILL). A runtime dir the CLI
// must not trust is refused, with a hint; one that is not a directory
// cannot be reached.
func TestClientWithoutADaemon(t *testing.T) {
	base := t.TempDir()
	paths := func(dir string) state.Paths { return state.Paths{RuntimeDir: dir} }
	ctx := context.Background()

	if _, err := NewClient(paths(filepath.Join(base, "none"))).Status(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no runtime dir: %v", err)
	}
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o700)
	if _, err := NewClient(paths(empty)).Status(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no socket: %v", err)
	}
	stale := filepath.Join(base, "stale")
	os.Mkdir(stale, 0o700)
	ln, err := net.Listen("unix", paths(stale).SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := NewClient(paths(stale)).Status(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("a socket no one listens on: %v", err)
	}

	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o755)
	var ue *UntrustedError
	if _, err := NewClient(paths(open)).Status(ctx); !errors.As(err, &ue) || ue.HintText() != "chmod 700 "+open || !strings.Contains(err.Error(), "may be entered by other users (mode 0755)") {
		t.Errorf("a runtime dir open to others: %v", err)
	}
	link := filepath.Join(base, "link")
	os.Symlink(empty, link)
	if _, err := NewClient(paths(link)).Status(ctx); !errors.As(err, &ue) || !strings.Contains(err.Error(), "is a symbolic link") || !strings.Contains(ue.HintText(), "LLMKEY_RUNTIME_DIR") {
		t.Errorf("a runtime dir that is a symbolic link: %v", err)
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	var unreach *UnreachableError
	if _, err := NewClient(paths(file)).Status(ctx); !errors.As(err, &unreach) || !strings.Contains(err.Error(), "not a directory") || !strings.Contains(unreach.HintText(), file) {
		t.Errorf("a runtime dir that is a file: %v", err)
	}
}

// A call ends when its context does, even when the daemon never answers.
func TestClientCallEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	dir, err := os.MkdirTemp("", "lkc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := state.Paths{RuntimeDir: dir}
	ln, err := net.Listen("unix", p.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := NewClient(p).Status(ctx); done <- err }()
	cancel()
	if err := <-done; err == nil {
		t.Error("a cancelled call succeeded")
	}
}

// The daemon's one line on the ready pipe: "ready", or why it could not
// start, which the CLI gets back whole; nothing, or a line that is not
// JSON, points at the log.
func TestReadyLine(t *testing.T) {
	p := state.Paths{StateDir: "/state"}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	WriteReady(w, &StartError{Message: "the keyfile is invalid", Hint: "fix line 2", Keyfile: true})
	line, _ := io.ReadAll(r)
	r.Close()
	var se *StartError
	if err := readyResult(string(line), p); !errors.As(err, &se) || *se != (StartError{Message: "the keyfile is invalid", Hint: "fix line 2", Keyfile: true}) {
		t.Errorf("a start error: %#v", err)
	}
	if b, _ := json.Marshal(se); string(b) != `{"error":"the keyfile is invalid","hint":"fix line 2","keyfile":true}` {
		t.Errorf("its JSON: %s", b)
	}
	r, w, _ = os.Pipe()
	WriteReady(w, nil)
	line, _ = io.ReadAll(r)
	r.Close()
	if string(line) != "ready\n" || readyResult(string(line), p) != nil {
		t.Errorf("ready: %q", line)
	}
	for in, want := range map[string]string{"": "the daemon exited before it was ready", "boom\n": "the daemon said: boom"} {
		if err := readyResult(in, p); !errors.As(err, &se) || se.Message != want || se.Hint != "see its log: "+p.LogPath() {
			t.Errorf("%q: %#v", in, err)
		}
	}
}

// LockHolder is the pid the daemon wrote in its lock, or 0.
func TestLockHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.lock")
	if LockHolder(path) != 0 {
		t.Error("no lock file: not 0")
	}
	os.WriteFile(path, []byte("4242\n"), 0o600)
	if got := LockHolder(path); got != 4242 {
		t.Errorf("got %d", got)
	}
	os.WriteFile(path, []byte("x"), 0o600)
	if got := LockHolder(path); got != 0 {
		t.Errorf("garbage: %d", got)
	}
}
