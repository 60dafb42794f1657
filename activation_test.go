// SPDX-License-Identifier: MIT

package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Socket activation with Debian's systemd-socket-activate, which does
// what a .socket unit does: it holds the proxy port and the control
// socket, and starts "llmkey daemon" on the first connection to either,
// handing both over. The first request through the port is served, and
// CLI calls after it find that daemon: none starts a second one.
func TestSocketActivation(t *testing.T) {
	u, cmd, addr, token := socketActivated(t)
	// It listens before any daemon runs.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close() // this connection itself wakes the daemon
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("systemd-socket-activate never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp := chat(t, "http://"+addr, token, nil)
	body := mustOK(t, resp)
	if !strings.Contains(body, "hello") {
		t.Fatalf("the first request through the handed-over port: %s", body)
	}
	pid := u.daemonPID()
	if pid == 0 || pid != cmd.Process.Pid {
		t.Fatalf("the daemon holding the lock is pid %d, not the activated one (%d)", pid, cmd.Process.Pid)
	}
	st, code := u.status()
	if code != 0 || st["proxy_url"] != "http://"+addr || int(st["pid"].(float64)) != pid {
		t.Fatalf("status after activation: exit %d %v", code, st)
	}
	for _, args := range [][]string{{"exec", "--", "true"}, {"start"}, {"list"}} {
		mustSucceed(t, u.llmkey(args...))
		if p := u.daemonPID(); p != pid {
			t.Fatalf("llmkey %v: the daemon is pid %d now, was %d", args, p, pid)
		}
	}
	if r := u.llmkey("start"); !strings.Contains(r.stderr, "already running (pid "+strconv.Itoa(pid)+")") {
		t.Errorf("start: %v", r)
	}
	if st["socket_activated"] != true || !strings.Contains(mustSucceed(t, u.llmkey("status")).stdout, "started by its socket") {
		t.Errorf("status does not say the daemon was started by its socket: %v", st)
	}
	// Like systemctl stopping a unit whose socket stays: stop says it
	// comes back at the next connection, and how to stop that too.
	if r := mustSucceed(t, u.llmkey("stop")); !strings.Contains(r.stderr, "systemctl --user stop llmkey.socket") {
		t.Errorf("stop of a socket-activated daemon: %v", r)
	}
}

// socketActivated starts systemd-socket-activate for a new user with a
// key, holding a free loopback port and the control socket for "llmkey
// daemon", and returns the port and the token a daemon made before.
func socketActivated(t *testing.T) (u *user, cmd *exec.Cmd, addr, token string) {
	t.Helper()
	needTool(t, "systemd-socket-activate", "systemd")
	u = newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	for _, d := range []string{u.runtimeDir(), u.stateDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The token, as a daemon would have made it before: the first
	// request must carry one.
	token = "llmk-local-" + strings.Repeat("ab", 24)
	writeFile(t, filepath.Join(u.stateDir(), "token"), token+"\n", 0o600)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	sock := filepath.Join(u.runtimeDir(), "sock")
	args := []string{"-l", addr, "-l", sock}
	for _, e := range u.env {
		args = append(args, "-E", e)
	}
	cmd = exec.Command("systemd-socket-activate", append(args, llmkeyBin, "daemon")...)
	cmd.Env = u.env
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	go func() {
		b, _ := io.ReadAll(stderr)
		logs <- string(b)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		l := <-logs
		u.assertNoCanary(l)
		// The keyfile's listen is the default, not the port handed over.
		if !strings.Contains(l, "not the keyfile's [daemon] listen") || !strings.Contains(l, "port="+addr) {
			t.Errorf("the daemon did not say it serves another port than the keyfile's:\n%s", l)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return u, cmd, addr, token
		}
		if time.Now().After(deadline) {
			t.Fatal("systemd-socket-activate never made the control socket")
		}
	}
}

// The first contact is a CLI call, on the control socket: it wakes the
// daemon there and gets its answer from it, and starts none of its own.
func TestSocketActivationByTheCLI(t *testing.T) {
	u, cmd, addr, _ := socketActivated(t)
	r := mustSucceed(t, u.llmkey("env", "--json"))
	if !strings.Contains(r.stdout, "http://"+addr) {
		t.Errorf("env from the woken daemon does not name the port handed over:\n%s", r.stdout)
	}
	if pid := u.daemonPID(); pid != cmd.Process.Pid {
		t.Fatalf("the daemon is pid %d, not the activated one (%d)", pid, cmd.Process.Pid)
	}
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	if pid := u.daemonPID(); pid != cmd.Process.Pid {
		t.Fatalf("after exec the daemon is pid %d, not the activated one (%d)", pid, cmd.Process.Pid)
	}
	// restart says it restarted, not the stop's word on the socket: a
	// socket unit would start the daemon again at restart's own call. This
	// socket went with the one daemon systemd-socket-activate runs, so
	// here restart starts one itself.
	r = mustSucceed(t, u.llmkey("restart"))
	if !strings.Contains(r.stderr, "daemon restarted (pid "+strconv.Itoa(u.daemonPID())+")") || strings.Contains(r.stderr, "its socket still listens") {
		t.Errorf("restart of a socket-activated daemon: %v", r)
	}
}
