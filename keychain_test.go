// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// lockKeychain locks the login keyring of u's Secret Service.
func (u *user) lockKeychain(t *testing.T) {
	t.Helper()
	lock := exec.Command("dbus-send", "--session", "--dest=org.freedesktop.secrets", "--type=method_call", "--print-reply",
		"/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock", "array:objpath:/org/freedesktop/secrets/collection/login")
	lock.Env = u.env
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("lock the keychain: %v\n%s", err, out)
	}
}

// goroutines is how many goroutines the daemon runs, from its profile on
// the control socket.
func (u *user) goroutines(ctl *http.Client) int {
	u.t.Helper()
	resp, err := ctl.Get("http://llmkey/debug/pprof/goroutine?debug=1")
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n int
	if _, err := fmt.Sscanf(string(b), "goroutine profile: total %d", &n); err != nil {
		u.t.Fatalf("the goroutine profile: %v\n%.200s", err, b)
	}
	return n
}

// A daemon whose keychain is locked reads it again on every reload, 200
// times here, and is left with the goroutines it had: a locked keychain
// costs nothing that lasts. The key says the keychain is locked; the
// other key serves.
func TestLockedKeychainCostsTheDaemonNothing(t *testing.T) {
	u := newUser(t)
	u.sessionBus(t)
	fake := newFakeProvider(t)
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n", fake.URL+"/v1"), 0o600)
	mustSucceed(t, u.pipe(u.canary("sk-kc-"), "add", "--keychain", "openai", "kc"))
	mustSucceed(t, u.pipe(u.canary("sk-plain-"), "add", "openai", "plain"))
	u.lockKeychain(t)
	mustSucceed(t, u.llmkey("start"))
	u.waitForKey("kc", 20*time.Second, func(state, reason string) bool {
		return state == "unavailable" && strings.Contains(reason, "keychain")
	})

	ctl := u.control()
	before := u.goroutines(ctl)
	for i := range 200 {
		resp, err := ctl.Post("http://llmkey/v1/reload", "application/json", nil)
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	n := u.goroutines(ctl)
	for deadline := time.Now().Add(10 * time.Second); n > before+10 && time.Now().Before(deadline); n = u.goroutines(ctl) {
		time.Sleep(100 * time.Millisecond)
	}
	if n > before+10 {
		t.Errorf("after 200 reads of the locked keychain the daemon runs %d goroutines, %d before", n, before)
	}
	if k := u.keyStatus("openai", "kc"); k["state"] != "unavailable" || !strings.Contains(fmt.Sprint(k["reason"]), "the keychain is locked") {
		t.Errorf("the keychain key: %v", k)
	}
	env := u.proxyEnv()
	mustOK(t, chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil))
}
