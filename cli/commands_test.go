// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// The commands' work functions, called in-process: a temp HOME, the
// paths under it, no daemon (its runtime dir does not exist), and the
// streams captured.

// tempUser makes a HOME for the test and points the environment at it
// (the commands that read HOME or XDG_* see it too), and returns the
// paths under it. The runtime dir is not made: no daemon runs there.
func tempUser(t *testing.T) (home string, p state.Paths) {
	t.Helper()
	home = t.TempDir()
	env := map[string]string{"HOME": home}
	for _, v := range []string{"XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "LLMKEY_KEYFILE", "LLMKEY_STATE_DIR", "LLMKEY_RUNTIME_DIR", "NO_COLOR"} {
		t.Setenv(v, "")
	}
	t.Setenv("HOME", home)
	p, err := state.ResolvePaths(func(k string) string { return env[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	return home, p
}

// captured are streams whose Out and Err the test reads; In is empty.
func captured(t *testing.T) (s Streams, out, errs *bytes.Buffer) {
	t.Helper()
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	out, errs = &bytes.Buffer{}, &bytes.Buffer{}
	return Streams{In: in, Out: out, Err: errs}, out, errs
}

// writeKeyfile writes a keyfile of the user's, 0600 in a 0700 directory.
func writeKeyfile(t *testing.T, p state.Paths, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p.Keyfile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Keyfile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeDaemon serves the control API's answers in answers (by "METHOD
// /path") on p's control socket, in a runtime dir of its own (short, for
// the socket's path), and returns p pointing at it. Any other request is
// a 404 in the API's error shape.
func fakeDaemon(t *testing.T, p state.Paths, answers map[string]any) state.Paths {
	t.Helper()
	dir, err := os.MkdirTemp("", "lk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p.RuntimeDir = dir
	ln, err := net.Listen("unix", p.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": "no such call: " + r.URL.Path, "hint": "upgrade"})
			return
		}
		json.NewEncoder(w).Encode(v)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}
