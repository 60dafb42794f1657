// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A daemon started where there is no D-Bus session bus (over ssh, in
// tmux or a container) cannot read a keychain key: the key's reason says
// so, and what to do, exactly once in status, which neither tells to
// unlock the keychain nor shows an error of a program llmkey did not
// run; exec says it once, not at every run; the log says it once, not at
// every retry. add --keychain there says why with a hint.
func TestKeychainWithoutASessionBus(t *testing.T) {
	if _, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid())); err == nil {
		t.Skip("every process of this user reaches the session bus at /run/user/UID/bus: no process here is without one")
	}
	u := newUser(t) // its environment has no DBUS_SESSION_BUS_ADDRESS
	fake := newFakeProvider(t)
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"kc\"\nkeychain = true\n\n[[key]]\nprovider = \"openai\"\nname = \"plain\"\nsecret = %q\n",
		fake.URL+"/v1", u.canary("sk-")), 0o600)
	const why = "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset; ssh/tmux/container?): restart the daemon from a desktop session, or use secret_cmd"
	mustSucceed(t, u.llmkey("start"))
	r := u.llmkey("status")
	if r.code != 1 || strings.Count(r.stdout, why) != 1 || strings.Contains(r.stdout, "unlock the keychain") || strings.Contains(r.stdout+r.stderr, "dbus-launch") {
		t.Errorf("status: %v", r)
	}
	first, second := u.llmkey("exec", "--", "true"), u.llmkey("exec", "--", "true")
	if strings.Count(first.stderr, why) != 1 || strings.Contains(second.stderr, "openai/kc") {
		t.Errorf("exec, twice:\n%v\n%v", first, second)
	}
	for range 3 {
		mustSucceed(t, u.llmkey("reload"))
	}
	if log := readFile(t, filepath.Join(u.stateDir(), "daemon.log")); strings.Count(log, "no D-Bus session bus") != 1 {
		t.Errorf("the log said it %d times, want once:\n%s", strings.Count(log, "no D-Bus session bus"), log)
	}
	r = u.pipe(u.canary("sk-"), "add", "--keychain", "openai", "more")
	if r.code != 1 || !strings.Contains(r.stderr, "no D-Bus session bus") || !strings.Contains(r.stderr, "hint: run this in a terminal of the desktop session") || strings.Contains(r.stderr, "dbus-launch") {
		t.Errorf("add --keychain: %v", r)
	}
}
