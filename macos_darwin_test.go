// SPDX-License-Identifier: MIT

package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The macOS Keychain, for real: add --keychain stores the secret there
// (service llmkey, account PROVIDER/NAME), not in the keyfile; the daemon
// reads it from there and serves with it; rm takes it out. It uses the
// user's default keychain: CI makes a throw-away one the default
// (security create-keychain, default-keychain); on a Mac of yours the
// entry goes to your login keychain and is removed after. The Keychain
// reads its search list from the real home, so llmkey runs with it, and
// with its own paths in the test's home.
func TestKeychainOnMacOS(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	u := newUser(t)
	u.env = append(u.env, "HOME="+home, "LLMKEY_KEYFILE="+u.keyfile(), "LLMKEY_STATE_DIR="+u.stateDir(), "LLMKEY_RUNTIME_DIR="+u.runtimeDir())
	fake := newFakeProvider(t)
	b := make([]byte, 4)
	rand.Read(b)
	name, secret := "kc"+hex.EncodeToString(b), u.canary("sk-proj-kc-")
	account := "openai/" + name
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n", fake.URL+"/v1"), 0o600)
	mustSucceed(t, u.pipe(secret, "add", "--keychain", "openai", name))
	t.Cleanup(func() { exec.Command("security", "delete-generic-password", "-s", "llmkey", "-a", account).Run() })
	if out, err := exec.Command("security", "find-generic-password", "-s", "llmkey", "-a", account, "-w").Output(); err != nil || strings.TrimSpace(string(out)) != secret {
		t.Fatalf("security find-generic-password -s llmkey -a %s: %v (the secret is not in the keychain)", account, err)
	}
	if kf := readFile(t, u.keyfile()); strings.Contains(kf, secret) || !strings.Contains(kf, "keychain = true") {
		t.Fatalf("the keyfile:\n%s", u.redact(kf))
	}
	env := u.proxyEnv()
	resp := chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if reqs := fake.requests(); resp.StatusCode != 200 || len(reqs) != 1 || reqs[0].credential() != secret {
		t.Fatalf("the keychain key did not serve: %d, %d requests upstream", resp.StatusCode, len(reqs))
	}
	mustSucceed(t, u.llmkey("rm", "--force", account))
	if err := exec.Command("security", "find-generic-password", "-s", "llmkey", "-a", account).Run(); err == nil {
		t.Error("rm left the secret in the keychain")
	}
}

// service install on macOS under launchd itself: launchctl bootstraps the
// agent into the user's gui domain, its daemon (the one launchd runs)
// serves, and service status says it is loaded; uninstall boots it out
// and removes the agent's file. plutil passes the file install wrote.
func TestLaunchdAgentUnderLaunchctl(t *testing.T) {
	domain := fmt.Sprintf("gui/%d", os.Getuid())
	if err := exec.Command("launchctl", "print", domain).Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("launchctl print %s: %v: no gui domain to load the agent into", domain, err)
		}
		t.Skipf("no %s domain (not the user logged in at the console): launchctl cannot load an agent here", domain)
	}
	if exec.Command("launchctl", "print", domain+"/dev.llmkey.daemon").Run() == nil {
		t.Skip("dev.llmkey.daemon is loaded already (yours?): this test loads one of its own")
	}
	u := newUser(t)
	fake := newFakeProvider(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), "127.0.0.1:0", addr, 1), 0o600)

	r := mustSucceed(t, u.llmkey("service", "install"))
	t.Cleanup(func() { exec.Command("launchctl", "bootout", domain+"/dev.llmkey.daemon").Run() })
	if !strings.Contains(r.stderr, "loaded dev.llmkey.daemon") {
		t.Fatalf("service install did not load the agent: %v", r)
	}
	plist := filepath.Join(u.home, "Library", "LaunchAgents", "dev.llmkey.daemon.plist")
	if out, err := exec.Command("plutil", "-lint", plist).CombinedOutput(); err != nil {
		t.Errorf("plutil -lint %s: %v\n%s", plist, err, out)
	}
	var st map[string]any
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var code int
		if st, code = u.status(); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's daemon never served: status %d %v", code, st)
		}
	}
	out, _ := exec.Command("launchctl", "print", domain+"/dev.llmkey.daemon").Output()
	if !strings.Contains(string(out), fmt.Sprintf("pid = %v\n", st["pid"])) {
		t.Errorf("the daemon serving (pid %v) is not launchd's:\n%s", st["pid"], out)
	}
	if out := mustSucceed(t, u.llmkey("service", "status")).stdout; !strings.Contains(out, "dev.llmkey.daemon: loaded") {
		t.Errorf("service status:\n%s", out)
	}
	if r := mustSucceed(t, u.llmkey("service", "uninstall")); !strings.Contains(r.stderr, "unloaded dev.llmkey.daemon") {
		t.Errorf("service uninstall: %v", r)
	}
	if exec.Command("launchctl", "print", domain+"/dev.llmkey.daemon").Run() == nil {
		t.Error("the agent is still loaded after uninstall")
	}
	if _, err := os.Stat(plist); err == nil {
		t.Error("uninstall left the agent's file")
	}
}
