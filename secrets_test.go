// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sessionBus starts a D-Bus session bus with gnome-keyring's Secret
// Service on it, its login keyring unlocked, for u: what a desktop
// session gives. Both end with the test: gnome-keyring exits with its
// bus.
func (u *user) sessionBus(t *testing.T) {
	t.Helper()
	needTool(t, "dbus-daemon", "dbus")
	needTool(t, "gnome-keyring-daemon", "gnome-keyring")
	bus := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
	bus.Env = u.env
	out, _ := bus.StdoutPipe()
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	addr, _ := bufio.NewReader(out).ReadString('\n')
	u.env = append(u.env, "DBUS_SESSION_BUS_ADDRESS="+strings.TrimSpace(addr))
	kr := exec.Command("gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize")
	kr.Env = u.env
	kr.Stdin = strings.NewReader("throwaway-password")
	o, err := kr.CombinedOutput()
	if err != nil {
		t.Fatalf("gnome-keyring-daemon: %v\n%s", err, o)
	}
	for _, line := range strings.Split(string(o), "\n") {
		if strings.HasPrefix(line, "GNOME_KEYRING_CONTROL=") {
			u.env = append(u.env, line)
		}
	}
}

// passStore makes a password store on a throw-away GnuPG key for u, with
// secret at name.
func (u *user) passStore(t *testing.T, name, secret string) {
	t.Helper()
	needTool(t, "pass", "pass gnupg")
	gnupg := filepath.Join(u.home, ".gnupg")
	os.MkdirAll(gnupg, 0o700)
	u.env = append(u.env, "GNUPGHOME="+gnupg, "PASSWORD_STORE_DIR="+filepath.Join(u.home, ".password-store"))
	run := func(stdin string, args ...string) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = u.env
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("", "gpg", "--batch", "--passphrase", "", "--quick-gen-key", "llmkey-test@example.invalid", "default", "default", "never")
	run("", "pass", "init", "llmkey-test@example.invalid")
	run(secret+"\n", "pass", "insert", "--multiline", name)
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = u.env
		cmd.Run()
	})
}

// A key kept in the Secret Service (gnome-keyring) and one behind a
// command (pass, on a throw-away GnuPG key) serve requests, and the
// keyfile holds neither secret; a failing command, and then a locked
// keychain, leave their key unusable with the reason in status while the
// others serve. The secrets appear in no output, log, state file, argv or
// environment.
func TestSecretsOutOfTheKeyfile(t *testing.T) {
	u := newUser(t)
	u.sessionBus(t)
	kcSecret, passSecret := u.canary("sk-proj-kc-"), u.canary("sk-proj-pass-")
	u.passStore(t, "llmkey/openai", passSecret)
	fake := newFakeProvider(t)
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\nstrategy = \"fill-first\"\n\n[provider.openai]\nbase_url = %q\n", fake.URL+"/v1"), 0o600)
	mustSucceed(t, u.pipe(kcSecret, "add", "--keychain", "openai", "kc"))
	writeFile(t, u.keyfile(), readFile(t, u.keyfile())+
		"\n[[key]]\nprovider = \"openai\"\nname = \"pass\"\nsecret_cmd = [\"pass\", \"show\", \"llmkey/openai\"]\n"+
		"\n[[key]]\nprovider = \"openai\"\nname = \"broken\"\nsecret_cmd = [\"sh\", \"-c\", \"echo no such entry >&2; exit 1\"]\n", 0o600)
	kf := readFile(t, u.keyfile())
	if strings.Contains(kf, kcSecret) || strings.Contains(kf, passSecret) || !strings.Contains(kf, "keychain = true") {
		t.Fatalf("the keyfile:\n%s", u.redact(kf))
	}

	env := u.proxyEnv()
	base, token := env["LLMKEY_URL"], env["LLMKEY_TOKEN"]
	served := func() map[string]int {
		n := map[string]int{}
		for _, s := range fake.requests() {
			n[s.credential()]++
		}
		return n
	}
	resp := chat(t, base, token, nil)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || served()[kcSecret] != 1 {
		t.Fatalf("the keychain key did not serve: %d %v", resp.StatusCode, len(fake.requests()))
	}
	mustSucceed(t, u.llmkey("disable", "openai/kc"))
	resp = chat(t, base, token, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || served()[passSecret] != 1 {
		t.Fatalf("the pass key did not serve: %d", resp.StatusCode)
	}
	mustSucceed(t, u.llmkey("enable", "openai/kc"))
	if k := u.keyStatus("openai", "broken"); k["state"] != "unavailable" || !strings.Contains(fmt.Sprint(k["reason"]), "secret_cmd sh failed") ||
		!strings.Contains(fmt.Sprint(k["reason"]), "no such entry") {
		t.Errorf("the key whose command fails: %v", k)
	}
	if _, code := u.status(); code != 1 {
		t.Errorf("status with an unreadable secret: exit %d", code)
	}

	// Lock the keychain: after a reload, the keychain key cannot serve,
	// the others do.
	lock := exec.Command("dbus-send", "--session", "--dest=org.freedesktop.secrets", "--type=method_call", "--print-reply",
		"/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock", "array:objpath:/org/freedesktop/secrets/collection/login")
	lock.Env = u.env
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("lock the keychain: %v\n%s", err, out)
	}
	u.llmkey("reload")
	deadline := time.Now().Add(20 * time.Second)
	for u.keyStatus("openai", "kc")["state"] != "unavailable" && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if k := u.keyStatus("openai", "kc"); k["state"] != "unavailable" || !strings.Contains(fmt.Sprint(k["reason"]), "keychain") {
		t.Errorf("the keychain key with the keychain locked: %v", k)
	}
	before := served()[passSecret]
	resp = chat(t, base, token, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || served()[passSecret] != before+1 {
		t.Errorf("the pass key did not serve with the keychain locked: %d", resp.StatusCode)
	}

	// The secrets are nowhere else: the state dir, the daemon's argv and
	// environment, the child's environment.
	pid := u.daemonPID()
	for _, p := range []string{fmt.Sprintf("/proc/%d/environ", pid), fmt.Sprintf("/proc/%d/cmdline", pid)} {
		b, _ := os.ReadFile(p)
		u.assertNoCanary(string(b))
	}
	filepath.Walk(u.stateDir(), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			u.assertNoCanary(string(b))
		}
		return nil
	})
	child := mustSucceed(t, u.llmkey("exec", "--", "sh", "-c", "cat /proc/$$/environ | tr '\\0' '\\n'"))
	u.assertNoCanary(child.stdout)
}
