// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoTop is the command the demo prints for watching it with top.
var demoTop = regexp.MustCompile(`(LLMKEY_KEYFILE=(\S+)/keys\.toml LLMKEY_STATE_DIR=\S+ LLMKEY_RUNTIME_DIR=\S+) llmkey top`)

// llmkey demo, for a user with no keys, in a real terminal with top
// running beside it: within a minute it shows a request served, a key
// cooling after a 429, a key parked after a 401, a failover to the other
// provider's key, and top shows the cooling and parked keys; after it,
// nothing of it is left (no file, no process), and the user's own
// keyfile and daemon were never touched.
func TestDemoShowsRotationWithinAMinuteAndLeavesNothing(t *testing.T) {
	u := newUser(t)
	tm := newTmux(t, u)
	start := time.Now()
	tm.tmux("new-session", "-d", "-x", "200", "-y", "80", "-s", "demo", "sh", "-c", shellQuote(llmkeyBin)+" demo; echo __END__ $?; sleep 600")
	screen := func(s string) string { return plain(tm.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", s)) }
	waitScreen := func(s, what string, ok func(string) bool) string {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			sc := screen(s)
			if ok(sc) {
				return sc
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never showed %s:\n%s", s, what, sc)
			}
		}
	}
	m := demoTop.FindStringSubmatch(waitScreen("demo", "how to watch it", demoTop.MatchString))
	env, dir := m[1], m[2]
	if !strings.HasPrefix(dir, filepath.Join(u.home, "tmp")+"/") {
		t.Errorf("the demo's directory %s is not in TMPDIR", dir)
	}
	tm.tmux("new-session", "-d", "-x", "120", "-y", "30", "-s", "top", "sh", "-c", env+" "+shellQuote(llmkeyBin)+" top; sleep 600")
	waitScreen("top", "the demo's keys", func(sc string) bool { return topState(sc, "gamma") == "ready" })
	tm.tmux("send-keys", "-t", "demo", "Enter") // starts it now

	var sawCooling, sawParked bool
	demo := waitScreen("demo", "its end", func(sc string) bool {
		top := screen("top")
		sawCooling = sawCooling || topState(top, "beta") == "cooling"
		sawParked = sawParked || topState(top, "gamma") == "parked"
		return strings.Contains(sc, "Enter ends the demo")
	})
	if took := time.Since(start); took > 60*time.Second {
		t.Errorf("the demo took %s to show it all", took)
	}
	for _, want := range []string{"-> served by openai/", "openai/beta answered 429", "openai/gamma answered 401",
		"openai/alpha answered 429, a limit of its organisation", "openrouter/spare served it"} {
		if !strings.Contains(demo, want) {
			t.Errorf("the demo never said %q:\n%s", want, demo)
		}
	}
	if !regexp.MustCompile(`openai/beta +cooling +\d+s`).MatchString(demo) || !regexp.MustCompile(`openai/gamma +parked`).MatchString(demo) {
		t.Errorf("the demo did not show the keys' states:\n%s", demo)
	}
	if !sawCooling || !sawParked {
		t.Errorf("top never showed beta cooling (%v) or gamma parked (%v):\n%s", sawCooling, sawParked, screen("top"))
	}
	tm.tmux("kill-session", "-t", "top") // its shell's command line names the demo's directory
	tm.tmux("send-keys", "-t", "demo", "Enter")
	if sc := waitScreen("demo", "its exit", func(sc string) bool { return strings.Contains(sc, "__END__") }); !strings.Contains(sc, "__END__ 0") {
		t.Errorf("the demo failed:\n%s", sc)
	}
	demoLeftNothing(t, u, dir)
}

// Ctrl-C (here SIGINT, off a terminal) ends the demo at once, with its
// daemon, its fake provider and its files.
func TestDemoInterruptedLeavesNothing(t *testing.T) {
	u := newUser(t)
	cmd := exec.Command(llmkeyBin, "demo")
	cmd.Env, cmd.Dir = u.env, u.home
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	lines := bufio.NewScanner(out)
	for dir == "" && lines.Scan() {
		if m := demoTop.FindStringSubmatch(lines.Text()); m != nil {
			dir = m[2]
		}
	}
	if dir == "" {
		cmd.Process.Kill()
		t.Fatalf("the demo never said how to watch it: %v", cmd.Wait())
	}
	if _, err := os.Stat(filepath.Join(dir, "keys.toml")); err != nil {
		t.Errorf("the demo's keyfile: %v", err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	for lines.Scan() {
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "demo interrupted") {
		t.Errorf("the demo after SIGINT: %v\n%s", err, stderr.String())
	}
	demoLeftNothing(t, u, dir)
}

// demoLeftNothing fails unless the demo's directory and every process
// that named it are gone, and u's own llmkey was left alone.
func demoLeftNothing(t *testing.T, u *user, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo left %s behind (%v)", dir, err)
	}
	if left, _ := os.ReadDir(filepath.Join(u.home, "tmp")); len(left) > 0 {
		t.Errorf("the demo left %d files in TMPDIR: %v", len(left), left)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), dir) {
			t.Errorf("a process of the demo is still running: %s: %q", p, b)
		}
	}
	if _, err := os.Stat(u.keyfile()); !os.IsNotExist(err) {
		t.Errorf("the demo touched the user's own keyfile: %v", err)
	}
	if u.daemonPID() != 0 {
		t.Error("the demo started the user's own daemon")
	}
}

// topState is the state top shows for the key name.
func topState(screen, name string) string {
	if f := topRow(screen, name); len(f) > 1 {
		return f[1]
	}
	return ""
}

// The demo needs no network: in a network namespace of its own, with
// only a loopback device, it shows it all and leaves nothing.
func TestDemoNeedsNoNetwork(t *testing.T) {
	needTool(t, "unshare", "util-linux")
	needTool(t, "ip", "iproute2")
	if out, err := exec.Command("unshare", "-rn", "true").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("no network namespace of one's own here (unshare -rn: %v: %s)", err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	u := newUser(t)
	cmd := exec.Command("unshare", "-rn", "sh", "-c", `ip link set lo up && exec "$0" demo --pause 0s`, llmkeyBin)
	cmd.Env, cmd.Dir = u.env, u.home
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "openai/gamma answered 401") || !strings.Contains(string(out), "openrouter/spare served it") {
		t.Fatalf("the demo with no network: %v\n%s", err, out)
	}
	m := demoTop.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("the demo did not say how to watch it:\n%s", out)
	}
	demoLeftNothing(t, u, m[2])
}
