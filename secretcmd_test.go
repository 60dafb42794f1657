// SPDX-License-Identifier: MIT

package main

import (
	"context"
	"crypto/rand"
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

// Two secret_cmds that take their time (each waits for the other to
// start, then for a go-ahead) neither keep the daemon from getting ready
// nor make exec wait for them: it runs its command, and says the keys
// are reading their secret. Both are read side by side, and serve once
// read.
func TestSlowSecretCommandsDoNotHoldTheDaemonBack(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	s1, s2 := u.secretFile("s1", u.canary("sk-one-")), u.secretFile("s2", u.canary("sk-two-"))
	p := func(name string) string { return filepath.Join(u.home, name) }
	wait := "touch %s; while [ ! -e %s ] || [ ! -e %s ]; do sleep 0.05; done; cat %s"
	u.secretCmdKeys(fake.URL, "", [][2]string{
		{"one", fmt.Sprintf(wait, p("started1"), p("started2"), p("go"), s1)},
		{"two", fmt.Sprintf(wait, p("started2"), p("started1"), p("go"), s2)},
	})
	r := u.llmkey("exec", "--", "true")
	if r.code != 0 || !strings.Contains(r.stderr, readingSecret) {
		t.Fatalf("exec while the secrets are read: %v", r)
	}
	for _, name := range []string{"one", "two"} {
		if k := u.keyStatus("openai", name); k["state"] != "unavailable" || k["reason"] != readingSecret {
			u.fatalf("openai/%s while its secret is read: %v", name, k)
		}
	}
	writeFile(t, p("go"), "", 0o600)
	for _, name := range []string{"one", "two"} {
		// Should the go-ahead come after the command's time, the retry
		// reads it.
		u.waitForKey(name, 45*time.Second, func(state, _ string) bool { return state == "ready" })
	}
	env := u.proxyEnv()
	mustOK(t, chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil))
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

// A failing secret_cmd whose standard error holds secrets (its own, one
// the keyfile holds for another key, one too plain for any pattern) shows
// none of them in the log, status, list, exec or test: its reason is a
// short excerpt with the secrets masked (exec says it once).
func TestFailingSecretCommandShowsNoSecret(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	leaked := u.secretFile("leaked", u.canary("sk-proj-"))
	plain := "plain.horse." + lowerLetters(12) // no pattern takes it for a secret
	u.canaries = append(u.canaries, plain)
	other := u.secretFile("other", plain)
	u.secretCmdKeys(fake.URL, "", [][2]string{
		{"broken", "echo \"could not unlock: token $(cat " + leaked + ") expired\" >&2; exit 1"},
		{"wrong", "echo \"wrong password $(cat " + other + ")\" >&2; exit 2"},
	}, [2]string{"a", plain})
	r := u.llmkey("exec", "--", "true")
	mustSucceed(t, r)
	if !strings.Contains(r.stderr, "wrong password [masked]") {
		u.errorf("exec does not show the key's problem:\n%s", r.stderr)
	}
	for name, want := range map[string]string{"broken": "secret_cmd sh failed (exit status 1): could not unlock: token [masked] expired",
		"wrong": "secret_cmd sh failed (exit status 2): wrong password [masked]"} {
		if k := u.keyStatus("openai", name); k["state"] != "unavailable" || !strings.Contains(fmt.Sprint(k["reason"]), want) {
			u.errorf("openai/%s: %v, want a reason with %q", name, k, want)
		}
	}
	list := mustSucceed(t, u.llmkey("list", "--json"))
	if !strings.Contains(list.stdout, "token [masked] expired") {
		u.errorf("list --json does not show the masked reason:\n%s", list.stdout)
	}
	// Said once, not at every exec.
	if r = u.llmkey("exec", "--", "true"); strings.Contains(r.stderr, "wrong password") {
		u.errorf("exec repeats the key's problem:\n%s", r.stderr)
	}
	if r := u.llmkey("test", "openai/wrong"); !strings.Contains(r.stdout, "wrong password [masked]") {
		u.errorf("test does not say why the secret was not read: %v", r)
	}
	u.llmkey("status")
	log := readFile(t, filepath.Join(u.stateDir(), "daemon.log"))
	u.assertNoCanary(log)
	if !strings.Contains(log, "token [masked] expired") {
		u.errorf("the log does not say why the secret was not read:\n%s", log)
	}
}

func lowerLetters(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}

// A reload waiting on a slow secret_cmd, overtaken by a reload of a newer
// keyfile without that key, never serves the older keyfile: once its
// command ends, the removed key does not come back.
func TestRemovedKeyNeverServesAgainAfterASlowReload(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	slow, kept, added := u.canary("sk-slow-"), u.canary("sk-kept-"), u.canary("sk-added-")
	p := func(name string) string { return filepath.Join(u.home, name) }
	// Slow only while "block" exists: started first, it reads at once.
	script := fmt.Sprintf("if [ -e %s ]; then touch %s; while [ ! -e %s ]; do sleep 0.05; done; fi; cat %s",
		p("block"), p("started"), p("go"), u.secretFile("s", slow))
	u.secretCmdKeys(fake.URL, "strategy = \"fill-first\"\n", [][2]string{{"slow", script}}, [2]string{"kept", kept})
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	u.waitForKey("slow", 10*time.Second, func(state, _ string) bool { return state == "ready" })

	writeFile(t, p("block"), "", 0o600)
	older := make(chan result, 1)
	go func() { older <- u.llmkey("reload") }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(p("started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reload never ran the slow command")
		}
	}
	u.secretCmdKeys(fake.URL, "strategy = \"fill-first\"\n", nil, [2]string{"kept", kept}, [2]string{"added", added})
	mustSucceed(t, u.llmkey("reload"))
	writeFile(t, p("go"), "", 0o600)
	<-older

	st, _ := u.status()
	var names []string
	for _, k := range st["providers"].(map[string]any)["openai"].(map[string]any)["keys"].([]any) {
		names = append(names, fmt.Sprint(k.(map[string]any)["name"]))
	}
	if strings.Join(names, " ") != "kept added" {
		t.Fatalf("after both reloads the daemon serves %v", names)
	}
	mustSucceed(t, u.llmkey("disable", "openai/kept"))
	env := u.proxyEnv()
	for range 3 {
		mustOK(t, chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil))
	}
	for _, r := range fake.requests() {
		if r.credential() == slow {
			t.Fatal("the removed key served")
		}
	}
}
