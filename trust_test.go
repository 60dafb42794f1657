// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A command that names another keyfile than the one the running daemon
// serves is refused: the daemon's keys never serve its tools. status and
// list say which keyfile is served.
func TestOtherKeyfileIsNeverServedByTheRunningDaemon(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	keyA := u.canary("sk-a-")
	u.oneKey(fake.URL, keyA) // the daemon runs on the default keyfile, A
	other := filepath.Join(u.home, "other.toml")
	writeFile(t, other, fmt.Sprintf("[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = %q\n",
		fake.URL+"/v1", u.canary("sk-b-")), 0o600)
	curl := "exec 3<>/dev/tcp/127.0.0.1/${LLMKEY_URL##*:} && printf 'POST /openai/chat/completions HTTP/1.0\\r\\nAuthorization: Bearer %s\\r\\nContent-Length: 2\\r\\n\\r\\n{}' \"$LLMKEY_TOKEN\" >&3 && cat <&3"
	for _, r := range []result{
		u.llmkey("--keyfile", other, "exec", "--", "bash", "-c", curl),
		u.run(nil, []string{"LLMKEY_KEYFILE=" + other}, "exec", "--", "bash", "-c", curl),
		u.llmkey("--keyfile", other, "env"),
		u.llmkey("--keyfile", other, "exec", "--no-start", "--", "true"),
		u.llmkey("--keyfile", other, "disable", "openai/b"),
	} {
		if r.code == 0 || !strings.Contains(r.stderr, "the running daemon serves the keyfile "+u.keyfile()) || !strings.Contains(r.stderr, "hint:") {
			t.Errorf("with another keyfile: %v", r)
		}
	}
	for _, s := range fake.requests() {
		t.Errorf("the upstream got a request, with %s", u.redact(s.credential()))
	}
	r := u.llmkey("--keyfile", other, "status")
	if r.code != 1 || !strings.Contains(r.stdout, "the daemon serves the keyfile "+u.keyfile()+", not "+other) {
		t.Errorf("status with another keyfile: %v", r)
	}
	r = mustSucceed(t, u.llmkey("--keyfile", other, "list", "--json"))
	var list struct {
		Daemon struct{ Keyfile string }
		Keys   []struct{ Reason string }
	}
	json.Unmarshal([]byte(r.stdout), &list)
	if list.Daemon.Keyfile != u.keyfile() || len(list.Keys) != 1 || !strings.Contains(list.Keys[0].Reason, "another keyfile") {
		t.Errorf("list with another keyfile: %s", r.stdout)
	}
}

// exec and env say on stderr why the daemon cannot serve a tool (no
// keys, a rejected keyfile), and "serving the last good keyfile" only
// when there was one.
func TestExecSaysWhenTheDaemonCannotServe(t *testing.T) {
	u := newUser(t)
	u.daemonOnFreePort() // no keyfile yet, so no [daemon] listen
	r := mustSucceed(t, u.llmkey("exec", "--", "true"))
	if !strings.Contains(r.stderr, "does not exist") || strings.Contains(r.stderr, "last good") {
		t.Errorf("exec without a keyfile: %v", r)
	}
	writeFile(t, u.keyfile(), "[deamon]\n", 0o600)
	if r := u.llmkey("reload"); r.code != 4 || strings.Contains(r.stderr, "last good") {
		t.Errorf("a bad first keyfile: %v", r)
	}
	if r := mustSucceed(t, u.llmkey("exec", "--", "true")); !strings.Contains(r.stderr, "unknown table") || strings.Contains(r.stderr, "last good") {
		t.Errorf("exec with a bad first keyfile: %v", r)
	}
	u.stopDaemon()
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \"127.0.0.1:0\"\n", 0o600)
	r = mustSucceed(t, u.llmkey("exec", "--", "true"))
	if !strings.Contains(r.stderr, "llmkey: warning: no keys: add one") {
		t.Errorf("exec with no keys: %v", r)
	}
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \"127.0.0.1:0\"\nstrategy = \"random\"\n", 0o600)
	if r := u.llmkey("reload"); r.code != 4 {
		t.Errorf("reload of a bad keyfile: %v", r)
	}
	r = mustSucceed(t, u.llmkey("env"))
	if !strings.Contains(r.stderr, `unknown strategy "random"`) {
		t.Errorf("env with a rejected keyfile: %v", r)
	}
	u.stopDaemon()

	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	writeFile(t, u.keyfile(), readFile(t, u.keyfile())+"\n[deamon]\n", 0o600)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = mustSucceed(t, u.llmkey("exec", "--", "true"))
		if strings.Contains(r.stderr, "(serving the last good keyfile)") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(r.stderr, "llmkey: warning: keyfile") || !strings.Contains(r.stderr, "(serving the last good keyfile)") {
		t.Errorf("exec after a bad edit: %v", r)
	}
}

// A key that stays out until its owner acts (the provider refuses it) is
// a problem to status: exit 1, and what to do (set --secret), said once.
func TestKeyThatNeedsTheUserIsAProblem(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	fake.on(a, answer(401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`))
	base, token := u.twoKeys(fake.URL, "openai", "", a, b)
	if _, code := u.status(); code != 0 {
		t.Fatalf("before any request: exit %d", code)
	}
	for range 2 {
		resp := chat(t, base, token, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	st, code := u.status()
	problems := fmt.Sprint(st["problems"])
	if code != 1 || !strings.Contains(problems, "openai/a parked") || !strings.Contains(problems, "replace its secret (llmkey set openai/a --secret)") {
		t.Errorf("status with a parked invalid key: exit %d %s", code, problems)
	}
	if k := u.keyStatus("openai", "a"); !strings.Contains(fmt.Sprint(k["action"]), "replace its secret") {
		t.Errorf("status --json has no action for the key: %v", k)
	}
	// Said once: its row's reason, and what to do under the table.
	r := u.llmkey("status")
	if r.code != 1 || !strings.Contains(r.stdout, "to do: openai/a: the provider does not accept this key") || strings.Count(r.stdout, "invalid_api_key") != 1 {
		t.Errorf("status: %v", r)
	}
}

// One state dir, one daemon: a second daemon with its own runtime dir on
// the same state dir refuses to start, naming the first; the first
// counts every request.
func TestSecondDaemonOnOneStateDirRefuses(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, token := u.oneKey(fake.URL, u.canary("sk-"))
	pid := u.daemonPID()
	other := filepath.Join(u.home, "run2")
	r := u.run(nil, []string{"LLMKEY_RUNTIME_DIR=" + other}, "start")
	if r.code == 0 || !strings.Contains(r.stderr, fmt.Sprintf("another llmkey daemon (pid %d) uses the state dir %s", pid, u.stateDir())) ||
		!strings.Contains(r.stderr, "hint:") {
		t.Errorf("a second daemon on the state dir: %v", r)
	}
	u.chatN(t, base, token, 5)
	rep := u.usage()
	if rep.Total.Requests != 5 {
		t.Errorf("%d requests counted, want 5", rep.Total.Requests)
	}
}

// The daemon does not keep the directory it was started from busy.
func TestDaemonLeavesTheCLIsDirectory(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", u.daemonPID()))
	if err != nil || cwd != "/" {
		t.Errorf("the daemon's directory is %q (%v), want /", cwd, err)
	}
}

// Numbers that would crash or swamp the daemon are refused with the line
// and the limit (exit 4); a hot reload to such a keyfile leaves the daemon
// serving the last good one.
func TestHugeNumbersAreRefused(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, token := u.oneKey(fake.URL, u.canary("sk-"))
	good := readFile(t, u.keyfile())
	for _, extra := range []string{
		"weight = 9223372036854775807\n\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \"sk-bbbbbbbbbbbbbbbbbbbbbbbb\"\nweight = 9223372036854775807\n",
		"rpm = 9223372036854775807\n",
		"rpm = 20000000\n",
	} {
		writeFile(t, u.keyfile(), good+extra, 0o600)
		r := u.llmkey("reload")
		if r.code != 4 || !strings.Contains(r.stderr, "keys.toml:11:") || !strings.Contains(r.stderr, "at most") {
			t.Errorf("reload of %q: %v", extra, r)
		}
		resp := chat(t, base, token, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("after a reload of %q the daemon answers %d", extra, resp.StatusCode)
		}
	}
	u.stopDaemon()
	r := u.llmkey("start")
	if r.code != 4 || !strings.Contains(r.stderr, "at most 100000") {
		t.Errorf("start with rpm = 20000000: %v", r)
	}
}

// A stream still open when the drain runs out of time is cut, and
// counted (partial, with what it had used), before the daemon exits.
func TestStreamCutByTheDrainIsCounted(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), "[daemon]\n", "[daemon]\ndrain_timeout = \"1s\"\n", 1), 0o600)
	env := u.proxyEnv()
	req, _ := http.NewRequest("POST", env["LLMKEY_URL"]+"/openai/chat/completions", strings.NewReader(`{"model":"slow","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+env["LLMKEY_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data:") {
		t.Fatalf("first event: %q %v", line, err)
	}
	pid := u.daemonPID()
	syscall.Kill(pid, syscall.SIGTERM)
	waitGone(t, pid)
	rep := u.usage()
	if rep.Total.Requests != 1 || rep.Total.Partial != 1 {
		t.Errorf("after a drain that cut the stream: %+v", rep.Total)
	}
}

// Two tools at once under exec with different selections: each one's
// requests go to its own keys only, and usage --by label shows each
// tool's tokens under its label. A revoked scoped token gets 401
// bad-token; the unscoped token still works.
func TestSelectionsKeepToolsOnTheirKeys(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	work, personal := u.canary("sk-proj-w-"), u.canary("sk-proj-p-")
	base, token := u.twoKeys(fake.URL, "openai", "", work, personal)
	writeFile(t, u.keyfile(), strings.Replace(strings.Replace(readFile(t, u.keyfile()),
		"name = \"a\"\n", "name = \"a\"\ntags = [\"work\"]\n", 1), "name = \"b\"\n", "name = \"b\"\ntags = [\"home\"]\n", 1), 0o600)
	mustSucceed(t, u.llmkey("reload"))

	// A tool: six requests, with whatever key and base URL exec gave it.
	loop := `node -e '(async () => { for (let i = 0; i < 6; i++) { const r = await fetch(process.env.OPENAI_BASE_URL + "/chat/completions",
	  {method: "POST", headers: {Authorization: "Bearer " + process.env.OPENAI_API_KEY}, body: JSON.stringify({model: "gpt-4o", messages: []})});
	  if (!r.ok) process.exit(1) } })()'`
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i, sel := range [][]string{{"--tag", "work", "--label", "agent-w"}, {"--key", "openai/b", "--label", "agent-p"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = u.llmkey(append(append([]string{"exec"}, sel...), "--", "sh", "-c", loop)...)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Fatalf("a tool failed: %v", r)
		}
	}
	counts := map[string]int{}
	for _, s := range fake.requests() {
		counts[s.credential()]++
	}
	if counts[work] != 6 || counts[personal] != 6 {
		t.Errorf("the upstream saw %d requests with the work key and %d with the personal one, want 6 each", counts[work], counts[personal])
	}
	rep := u.usage("--by", "label,key")
	byLabel := map[string]string{}
	for _, row := range rep.Rows {
		byLabel[row.Label] += row.Key
		if row.Requests != 6 || row.In == 0 {
			t.Errorf("usage row %+v", row)
		}
	}
	if byLabel["agent-w"] != "a" || byLabel["agent-p"] != "b" {
		t.Errorf("usage by label: %v", byLabel)
	}

	r := mustSucceed(t, u.llmkey("env", "--shell", "json", "--tag", "work", "--label", "one-off"))
	var env map[string]*string
	json.Unmarshal([]byte(r.stdout), &env)
	scoped := *env["OPENAI_API_KEY"]
	if !strings.HasPrefix(scoped, "llmk-scoped-") {
		t.Fatalf("env --tag gave %q", scoped)
	}
	list := mustSucceed(t, u.llmkey("token", "list", "--json"))
	var tokens []struct{ ID, Label string }
	json.Unmarshal([]byte(list.stdout), &tokens)
	id := ""
	for _, tk := range tokens {
		if tk.Label == "one-off" {
			id = tk.ID
		}
	}
	if id == "" || strings.Contains(list.stdout, scoped) {
		t.Fatalf("token list: %v", list)
	}
	if resp := chat(t, base, scoped, nil); resp.StatusCode != 200 {
		t.Fatalf("the scoped token before revoke: %d", resp.StatusCode)
	}
	mustSucceed(t, u.llmkey("token", "revoke", id))
	resp := chat(t, base, scoped, nil)
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("X-Llmkey-Error") != "bad-token" {
		t.Errorf("a revoked token: %d %q", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"))
	}
	if resp := chat(t, base, token, nil); resp.StatusCode != 200 {
		t.Errorf("the unscoped token after a revoke: %d", resp.StatusCode)
	}
}

// daemonOnFreePort runs u's daemon on a port free now, handed to it as a
// socket unit hands one over: without a keyfile, or with one that says
// no listen, it would need the default port free.
func (u *user) daemonOnFreePort() {
	u.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		u.t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		u.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" daemon --log-file`, llmkeyBin)
	cmd.Env, cmd.Dir, cmd.ExtraFiles = u.env, u.home, []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	go cmd.Wait()
	u.waitFor("the daemon on a free port", func() bool { _, code := u.status(); return code != 3 })
}
