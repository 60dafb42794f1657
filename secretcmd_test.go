package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secretCmdKeys writes a keyfile pointed at the fake with one openai key
// per entry of cmds (name: the secret_cmd's shell script) and any
// literal keys after them.
func (u *user) secretCmdKeys(fakeURL, daemonExtra string, cmds [][2]string, literal ...[2]string) {
	u.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[daemon]\nlisten = \"127.0.0.1:0\"\n%s\n[provider.openai]\nbase_url = %q\n", daemonExtra, fakeURL+"/v1")
	for _, c := range cmds {
		script, _ := json.Marshal(c[1])
		fmt.Fprintf(&b, "\n[[key]]\nprovider = \"openai\"\nname = %q\nsecret_cmd = [\"sh\", \"-c\", %s]\n", c[0], script)
	}
	for _, k := range literal {
		fmt.Fprintf(&b, "\n[[key]]\nprovider = \"openai\"\nname = %q\nsecret = %q\n", k[0], k[1])
	}
	writeFile(u.t, u.keyfile(), b.String(), 0o600)
}

// secretFile writes secret to a file of u's for a secret_cmd to cat.
func (u *user) secretFile(name, secret string) string {
	u.t.Helper()
	p := filepath.Join(u.home, name)
	writeFile(u.t, p, secret+"\n", 0o600)
	return p
}

// control is a client of the daemon's control socket.
func (u *user) control() *http.Client {
	sock := filepath.Join(u.runtimeDir(), "sock")
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// waitForKey polls status until the key's state and reason satisfy ok,
// for up to d.
func (u *user) waitForKey(name string, d time.Duration, ok func(state, reason string) bool) map[string]any {
	u.t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		k := u.keyStatus("openai", name)
		if ok(fmt.Sprint(k["state"]), fmt.Sprint(k["reason"])) {
			return k
		}
		if time.Now().After(deadline) {
			u.fatalf("waited %s for openai/%s; it is %v", d, name, k)
		}
	}
}

// A secret_cmd that exits but leaves a child holding its output open is
// read at once, not when the child ends, and the child is killed.
func TestSecretCommandLeavingAChildBehind(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	secret := u.canary("sk-held-")
	pidFile := filepath.Join(u.home, "child.pid")
	u.secretCmdKeys(fake.URL, "", [][2]string{{"held", "sleep 300 & echo $! > " + pidFile + "; cat " + u.secretFile("s", secret)}})
	t.Cleanup(func() {
		if pid := childPID(pidFile, "sleep\x00300\x00"); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	env := u.proxyEnv()
	mustOK(t, chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil))
	if reqs := fake.requests(); len(reqs) != 1 || reqs[0].credential() != secret {
		t.Fatal("the key did not serve with the secret its command printed")
	}
	u.waitFor("the child to be killed", func() bool { return childPID(pidFile, "sleep\x00300\x00") == 0 })
}

// childPID is the pid in file while that process still runs cmdline.
func childPID(file, cmdline string) int {
	b, _ := os.ReadFile(file)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	if c, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); string(c) != cmdline {
		return 0
	}
	return pid
}

// A secret_cmd that prints 400 MB is stopped after a secret's worth: the
// key says its output was too large, and the daemon's memory never grew
// past what its buffered bodies may take plus 64 MiB.
func TestSecretCommandPrintingWithoutEnd(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	const maxBufferedMB = 64
	u.secretCmdKeys(fake.URL, fmt.Sprintf("max_buffered_mb = %d\n", maxBufferedMB),
		[][2]string{{"flood", "yes sk-flood-aaaaaaaaaaaaaaaaaaaaaaaa | head -c 400000000"}}, [2]string{"a", u.canary("sk-a-")})
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	k := u.waitForKey("flood", 45*time.Second, func(_, reason string) bool { return reason != readingSecret })
	if peak, limit := peakRSS(t, u.daemonPID()), (maxBufferedMB+64)<<20; peak > limit {
		t.Errorf("the daemon's peak resident memory was %d MiB, over %d MiB", peak>>20, limit>>20)
	}
	if k["state"] != "unavailable" || !strings.Contains(fmt.Sprint(k["reason"]), "output too large") {
		t.Errorf("the key whose command printed 400 MB: %v", k)
	}
}

// readingSecret is the reason of a key whose secret is being read.
const readingSecret = "reading its secret"

// peakRSS is the most memory pid has had resident, in bytes.
func peakRSS(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")))
			if err != nil {
				t.Fatalf("VmHWM: %q", line)
			}
			return n << 10
		}
	}
	t.Fatal("no VmHWM in the daemon's /proc status")
	return 0
}
