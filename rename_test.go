// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// usageByKey is "usage --by key"'s requests per PROVIDER/NAME.
func (u *user) usageByKey() map[string]int64 {
	u.t.Helper()
	r := mustSucceed(u.t, u.llmkey("usage", "--by", "key", "--json"))
	var rep struct {
		Rows []struct {
			Provider, Key string
			Requests      int64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		u.fatalf("usage --json: %v\n%s", err, r.stdout)
	}
	out := map[string]int64{}
	for _, row := range rep.Rows {
		out[row.Provider+"/"+row.Key] += row.Requests
	}
	return out
}

// rename changes the key's name line and no other byte of the keyfile;
// with the daemon running, the key's usage, its hand-made disable and a
// running tool's scoped token follow it to the new name; with none
// running, its usage and its disable do too (PROVIDER NAME NEW, the
// other form, once). A
// name in use, or no name, is refused with nothing changed.
func TestRenameKeepsUsageStateAndTokens(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	base, token := u.keysFile("", "[provider.openai]\nbase_url = \""+fake.URL+"/v1\"\n", [3]string{"openai/a", a, "# the work account"}, [3]string{"openai/b", b, ""})
	u.chatN(t, base, token, 4)
	u.waitFor("4 requests counted", func() bool { k := u.usageByKey(); return k["openai/a"]+k["openai/b"] == 4 })
	before := u.usageByKey()

	// A tool running under exec --key openai/a, with its scoped token.
	tool := exec.Command(llmkeyBin, "exec", "--key", "openai/a", "--", "sh", "-c", `echo "$LLMKEY_TOKEN"; exec sleep 60`)
	tool.Env, tool.Dir = u.env, u.home
	out, _ := tool.StdoutPipe()
	if err := tool.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { tool.Process.Kill(); tool.Wait() }()
	line := bufio.NewScanner(out)
	if !line.Scan() {
		t.Fatal("the tool under exec printed no token")
	}
	scoped := strings.TrimSpace(line.Text())
	mustSucceed(t, u.llmkey("disable", "--for", "1h", "openai/b"))

	kf := readFile(t, u.keyfile())
	r := mustSucceed(t, u.llmkey("rename", "openai/a", "work"))
	if !strings.Contains(r.stderr, "renamed openai/a to openai/work") || strings.Contains(r.stderr, "llmkey:") {
		t.Errorf("rename's message: %v", r)
	}
	if got, want := readFile(t, u.keyfile()), strings.Replace(kf, "name = \"a\"", "name = \"work\"", 1); got != want {
		t.Errorf("the keyfile after rename:\n%s\nwant:\n%s", got, want)
	}
	if after := u.usageByKey(); after["openai/work"] != before["openai/a"] || after["openai/a"] != 0 || after["openai/b"] != before["openai/b"] {
		t.Errorf("usage by key after rename: %v, before %v", after, before)
	}
	if ks := u.keyStatus("openai", "work"); ks["state"] != "ready" {
		t.Errorf("openai/work after rename: %v", ks)
	}
	resp := chat(t, base, scoped, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Llmkey-Key") != "openai/work" {
		t.Errorf("the tool's scoped token after the rename: %d %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Key"))
	}

	// The disabled key, renamed: it stays disabled.
	mustSucceed(t, u.llmkey("rename", "openai/b", "home"))
	if ks := u.keyStatus("openai", "home"); ks["state"] != "disabled" {
		t.Errorf("a key disabled by hand, renamed: %v", ks)
	}

	for _, args := range [][]string{{"rename", "openai/work", "home"}, {"rename", "openai/work", "no/name"}, {"rename", "openai/nosuch", "x"}} {
		kf := readFile(t, u.keyfile())
		if r := u.llmkey(args...); r.code == 0 || !strings.Contains(r.stderr, "hint:") || readFile(t, u.keyfile()) != kf {
			t.Errorf("llmkey %v: %v", args, r)
		}
	}

	// With no daemon running.
	tool.Process.Kill()
	u.stopDaemon()
	before = u.usageByKey()
	mustSucceed(t, u.llmkey("rename", "openai", "work", "job"))
	if after := u.usageByKey(); after["openai/job"] != before["openai/work"] || after["openai/work"] != 0 || u.daemonPID() != 0 {
		t.Errorf("usage by key after a rename with no daemon: %v, before %v (daemon pid %d)", after, before, u.daemonPID())
	}
	mustSucceed(t, u.llmkey("rename", "openai/home", "house"))
	mustSucceed(t, u.llmkey("start"))
	if ks := u.keyStatus("openai", "house"); ks["state"] != "disabled" {
		t.Errorf("a key disabled by hand, renamed with no daemon running: %v", ks)
	}
}

// keychainHas reports whether u's Secret Service holds llmkey's item for
// the account PROVIDER/NAME.
func (u *user) keychainHas(t *testing.T, account string) bool {
	t.Helper()
	search := exec.Command("dbus-send", "--session", "--dest=org.freedesktop.secrets", "--print-reply", "/org/freedesktop/secrets",
		"org.freedesktop.Secret.Service.SearchItems", "dict:string:string:service,llmkey,username,"+account)
	search.Env = u.env
	out, err := search.CombinedOutput()
	if err != nil {
		t.Fatalf("search the keychain: %v\n%s", err, out)
	}
	return strings.Contains(string(out), "object path")
}

// A key kept in the keychain, renamed, moves to the new account there:
// the daemon serves it under its new name, and the old account is gone.
func TestRenameMovesTheKeychainEntry(t *testing.T) {
	u := newUser(t)
	u.sessionBus(t)
	fake := newFakeProvider(t)
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = \""+fake.URL+"/v1\"\n", 0o600)
	secret := u.canary("sk-kc-")
	mustSucceed(t, u.pipe(secret, "add", "--keychain", "openai", "kc"))
	mustSucceed(t, u.llmkey("rename", "openai/kc", "work"))
	if !u.keychainHas(t, "openai/work") || u.keychainHas(t, "openai/kc") {
		t.Errorf("the keychain after rename: openai/work %v, openai/kc %v", u.keychainHas(t, "openai/work"), u.keychainHas(t, "openai/kc"))
	}
	env := u.proxyEnv()
	resp := chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Llmkey-Key") != "openai/work" || fake.count(secret) != 1 {
		t.Errorf("served %d by %q; the upstream saw the key %d times", resp.StatusCode, resp.Header.Get("X-Llmkey-Key"), fake.count(secret))
	}
}
