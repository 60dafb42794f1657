// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// otherUser is a second local user, for the tests of what another user
// on the machine can and cannot do to this one's llmkey. Creating one
// needs root, which CI has; it is removed when the test ends.
type otherUser struct {
	name     string
	uid, gid int
	bin      string // a copy of this test binary that the user may run
}

func newOtherUser(t *testing.T) *otherUser {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs a second local user, which only root can create (CI runs as root)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "lkother" + hex.EncodeToString(b)
	o := &otherUser{name: name}
	var err error
	if o.uid, o.gid, err = addLocalUser(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeLocalUser(name) })
	// The test binary lives in a directory only we may enter.
	dir, err := os.MkdirTemp("", "lkbin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	o.bin = filepath.Join(dir, "llmkey.test")
	self, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	out, err := os.OpenFile(o.bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(out, self)
	out.Close()
	return o
}

// command runs the test binary as this user, with env.
func (o *otherUser) command(env ...string) *exec.Cmd {
	cmd := exec.Command(o.bin, "-test.run=XXX")
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}}
	return cmd
}

// holdConns opens N idle connections to ADDR ("ADDR N"), each after one
// /livez request, prints how many it holds, and keeps them until killed.
func holdConns(spec string) {
	addr, n, _ := strings.Cut(spec, " ")
	count, _ := strconv.Atoi(n)
	var held []net.Conn
	for range count {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			continue
		}
		c.Write([]byte("GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
		held = append(held, c)
	}
	fmt.Println("held", len(held))
	select {}
}

// Another user holding 10,000 idle connections to the proxy does not
// keep this user's requests out: the daemon (here with a limit of 4,096
// files, under what the connections would take) refuses them at accept.
func TestOtherUsersConnectionsAreRefused(t *testing.T) {
	o := newOtherUser(t)
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	start := exec.Command("sh", "-c", "ulimit -n 4096 && exec \"$0\" start", llmkeyBin)
	start.Env = u.env
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	env := u.proxyEnv()
	addr := strings.TrimPrefix(env["LLMKEY_URL"], "http://")

	hold := o.command("LLMKEY_HOLD_CONNS=" + addr + " 10000")
	out, _ := hold.StdoutPipe()
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Process.Kill(); hold.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	t.Logf("the other user: %s", strings.TrimSpace(line))

	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 20 {
		req, _ := http.NewRequest("POST", env["LLMKEY_URL"]+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
		req.Header.Set("Authorization", "Bearer "+env["LLMKEY_TOKEN"])
		req.Close = true // a new connection each time
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d while another user holds connections: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if log := readFile(t, filepath.Join(u.stateDir(), "daemon.log")); !strings.Contains(log, "refused proxy connections from another user") ||
		!strings.Contains(log, "peer_uid="+strconv.Itoa(o.uid)) {
		t.Errorf("the daemon's log does not say it refused them:\n%s", log)
	}
}

// A process of the same user cannot read the daemon's memory or
// environment (it is not dumpable, as ssh-agent): run as the second user,
// whose own cat cannot read its own daemon's /proc/PID/environ.
func TestDaemonMemoryIsClosedToItsOwnUser(t *testing.T) {
	o := newOtherUser(t)
	home, err := os.MkdirTemp("", "lkhome")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	os.Chown(home, o.uid, o.gid)
	bin := filepath.Join(filepath.Dir(o.bin), "llmkey")
	src, _ := os.ReadFile(llmkeyBin)
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	d := o.command("HOME="+home, "GORACE=atexit_sleep_ms=0")
	d.Path, d.Args = bin, []string{"llmkey", "daemon"}
	stderr, _ := d.StderrPipe()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Signal(syscall.SIGTERM); d.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "msg=ready") {
	}
	go io.Copy(io.Discard, stderr)

	cat := o.command()
	cat.Path, cat.Args = "/bin/cat", []string{"cat", fmt.Sprintf("/proc/%d/environ", d.Process.Pid)}
	out, err := cat.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("the daemon's own user read its environment: %v %q", err, out)
	}
}
