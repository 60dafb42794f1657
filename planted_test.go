// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runPlantedDaemon is another user's fake daemon: on sock it answers the
// control API as llmkey's would, pointing tools at its own proxy with a
// token of its choosing. It prints "ready" and serves until killed.
func runPlantedDaemon(sock string) {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	os.Chmod(sock, 0o777)
	fmt.Println("ready")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"running": true, "pid": 1, "version": "0.1.0",
			"proxy_url": "http://127.0.0.66:9", "token": "llmk-local-attacker", "providers": []string{"openai"}, "problems": []string{}})
	}))
}

// startPlanted starts o's fake daemon on sock and stops it with the test.
func (o *otherUser) startPlanted(t *testing.T, sock string) {
	t.Helper()
	cmd := o.command("LLMKEY_PLANTED_DAEMON=" + sock)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("the planted daemon did not start: %q", line)
	}
}

// Another user who plants a fake daemon where this user's runtime dir
// would be gets no traffic: exec, env and status refuse with a hint and
// exit non-zero, whether the dir is theirs or only the socket.
func TestPlantedDaemonGetsNoTraffic(t *testing.T) {
	o := newOtherUser(t)
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})

	// A shared, world-writable directory, as /tmp is, where the other
	// user makes the runtime dir first.
	pub, err := os.MkdirTemp("", "lkpub") // a directory the other user may enter
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	os.Chmod(pub, 0o755)
	shared := filepath.Join(pub, "shared")
	os.Mkdir(shared, 0o777)
	os.Chmod(shared, 0o1777)
	theirs := filepath.Join(shared, "llmkey")
	mk := o.command()
	mk.Path, mk.Args = "/bin/mkdir", []string{"mkdir", "-m", "0777", theirs}
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("mkdir as the other user: %v %s", err, out)
	}
	o.startPlanted(t, filepath.Join(theirs, "sock"))

	// A dir of ours, with the other user's socket in it (made while the
	// dir let them in, then closed).
	ours := filepath.Join(pub, "rt")
	os.Mkdir(ours, 0o733)
	os.Chmod(ours, 0o733)
	o.startPlanted(t, filepath.Join(ours, "sock"))
	os.Chmod(ours, 0o700)

	for _, env := range [][]string{{"XDG_RUNTIME_DIR=" + shared}, {"LLMKEY_RUNTIME_DIR=" + theirs}, {"LLMKEY_RUNTIME_DIR=" + ours}} {
		for _, args := range [][]string{{"exec", "--", "sh", "-c", "echo $LLMKEY_TOKEN"}, {"env"}, {"status"}} {
			r := u.run(nil, env, args...)
			if r.code == 0 || strings.Contains(r.stdout, "attacker") || !strings.Contains(r.stderr, "hint:") ||
				!strings.Contains(r.stderr, "not by you") {
				t.Errorf("%v llmkey %v: %v", env, args, r)
			}
		}
	}
	if len(fake.requests()) != 0 {
		t.Error("the upstream was reached")
	}
}
