// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// tmuxTerm is a real 80x24 terminal: a tmux server of the test's own.
type tmuxTerm struct {
	t    *testing.T
	u    *user
	sock string
	n    int
}

func newTmux(t *testing.T, u *user) *tmuxTerm {
	t.Helper()
	needTool(t, "tmux", "tmux")
	tm := &tmuxTerm{t: t, u: u, sock: filepath.Join(u.home, "tmux.sock")}
	t.Cleanup(func() { tm.tmux("kill-server") })
	// A session that stays, so that the server does not exit (and race
	// the next new-session) whenever a test's own session ends.
	tm.tmux("new-session", "-d", "-s", "keep", "sleep", "600")
	return tm
}

func (tm *tmuxTerm) tmux(args ...string) string {
	cmd := exec.Command("tmux", append([]string{"-S", tm.sock, "-f", "/dev/null"}, args...)...)
	cmd.Env = append(append([]string{}, tm.u.env...), "TERM=xterm-256color")
	out, err := cmd.CombinedOutput()
	if err != nil && args[0] != "kill-server" {
		tm.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// run runs llmkey with args in a fresh 80x24 window, with env set, and
// returns the screen and its history as the terminal shows them:
// wrapped lines joined (so a line wider than 80 columns is one that
// wrapped) and with the colours (-e).
func (tm *tmuxTerm) run(env string, args ...string) string {
	tm.t.Helper()
	tm.n++
	name := fmt.Sprintf("w%d", tm.n)
	script := env + " " + shellQuote(llmkeyBin)
	for _, a := range args {
		script += " " + shellQuote(a)
	}
	script += "; echo __END__; sleep 600"
	tm.tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", name, "sh", "-c", script)
	defer tm.tmux("kill-session", "-t", name)
	deadline := time.Now().Add(20 * time.Second)
	for {
		screen := tm.tmux("capture-pane", "-p", "-e", "-J", "-S", "-", "-t", name)
		if i := strings.Index(screen, "__END__"); i >= 0 {
			tm.u.assertNoCanary(screen)
			return screen[:i]
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("llmkey %v did not finish in the terminal:\n%s", args, screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// plain is s without its ANSI escapes.
func plain(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// In an 80x24 terminal, list, status and usage never wrap, with a cooling
// key whose reason is 60 characters long, a parked and a disabled key;
// states are coloured there, never with NO_COLOR or --no-color, and piped
// output has whole, stable columns without colour.
func TestTablesFitAnEightyColumnTerminal(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	cool, parked, ok := u.canary("sk-a-"), u.canary("sk-b-"), u.canary("sk-c-")
	fake.on(cool, answer(429, map[string]string{"Retry-After": "300"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
	fake.on(parked, answer(401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`))
	kf := fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n", fake.URL+"/v1")
	for _, k := range [][2]string{{"a", cool}, {"personal-free-tier", parked}, {"c", ok}, {"d", u.canary("sk-d-")}} {
		kf += fmt.Sprintf("\n[[key]]\nprovider = \"openai\"\nname = %q\nsecret = %q\nrpm = 500\ntpm = 200000\nmodels = [\"gpt-*\", \"o*\"]\n", k[0], k[1])
	}
	writeFile(t, u.keyfile(), kf, 0o600)
	env := u.proxyEnv()
	model := "gpt-4o-mini-2024-07-18-very-long-name" // reason: "rate limited (retry-after) on " + model
	for range 6 {
		mustOK(t, chatModel(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], model))
	}
	mustSucceed(t, u.llmkey("disable", "openai", "d"))
	k := u.keyStatus("openai", "a")
	if k["state"] != "cooling" || len(k["reason"].(string)) < 60 {
		t.Fatalf("want a cooling key with a reason of 60 characters: %v", k)
	}
	if k := u.keyStatus("openai", "personal-free-tier"); k["state"] != "parked" {
		t.Fatalf("want a parked key: %v", k)
	}

	tm := newTmux(t, u)
	for _, args := range [][]string{{"list"}, {"status"}, {"usage"}, {"usage", "--by", "day"}, {"usage", "--by", "key,model,label"}} {
		screen := tm.run("", args...)
		text := plain(screen)
		if os.Getenv("LLMKEY_SHOW") != "" {
			t.Logf("llmkey %v:\n%s", args, text)
		}
		for _, line := range strings.Split(text, "\n") {
			if w := utf8.RuneCountInString(line); w > 80 {
				t.Errorf("llmkey %v wrapped a line of %d columns in an 80-column terminal:\n%s", args, w, text)
			}
		}
		if args[0] != "usage" {
			for _, s := range []string{"cooling", "parked", "disabled", "ready"} {
				if !strings.Contains(screen, "m"+s+"\x1b[") {
					t.Errorf("llmkey %v: %s is not coloured on a terminal:\n%q", args, s, screen)
				}
			}
		}
		if args[0] == "status" && !strings.Contains(text, "to do: openai/personal-free-tier:") {
			t.Errorf("status says not what to do with the parked key:\n%s", text)
		}
	}
	for _, env := range []string{"NO_COLOR=1", ""} {
		args := []string{"list"}
		if env == "" {
			args = append(args, "--no-color")
		}
		if screen := tm.run(env, args...); strings.Contains(screen, "\x1b[3") || !strings.Contains(screen, "cooling") {
			t.Errorf("%s llmkey %v coloured its output:\n%q", env, args, screen)
		}
	}
	// The live view, in the same 80x24 terminal: it shows the cooling
	// and parked keys, follows a change within 2 s, and q quits it.
	tm.tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "top", "sh", "-c", shellQuote(llmkeyBin)+" top; echo __END__; sleep 600")
	topScreen := func() string { return tm.tmux("capture-pane", "-p", "-e", "-t", "top") }
	waitTop := func(what string, ok func(string) bool) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			sc := topScreen()
			if ok(plain(sc)) {
				for _, l := range strings.Split(plain(sc), "\n") {
					if utf8.RuneCountInString(l) > 80 {
						t.Errorf("top drew a line of %d columns: %q", utf8.RuneCountInString(l), l)
					}
				}
				return time.Since(start)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("top never showed %s:\n%s", what, plain(sc))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	rowState := func(sc, name string) string {
		for _, l := range strings.Split(sc, "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == name {
				return f[1]
			}
		}
		return ""
	}
	parkedRow := func(sc string) bool {
		for _, l := range strings.Split(sc, "\n") {
			if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[0], "personal") && f[1] == "parked" {
				return true
			}
		}
		return false
	}
	waitTop("the keys", func(sc string) bool {
		return rowState(sc, "a") == "cooling" && parkedRow(sc) && rowState(sc, "c") == "ready"
	})
	if sc := topScreen(); !strings.Contains(sc, "mcooling\x1b[") {
		t.Errorf("top does not colour the states:\n%q", sc)
	}
	mustSucceed(t, u.llmkey("disable", "openai", "c"))
	if took := waitTop("c disabled", func(sc string) bool { return rowState(sc, "c") == "disabled" }); took > 2*time.Second {
		t.Errorf("top showed the change after %v; want within 2 s", took)
	}
	tm.tmux("send-keys", "-t", "top", "q")
	waitTop("its exit after q", func(sc string) bool { return strings.Contains(sc, "__END__") })

	if r := u.llmkey("top"); r.code != 2 || !strings.Contains(r.stderr, "top needs a terminal") || !strings.Contains(r.stderr, "status --json") {
		t.Errorf("top without a terminal: %v", r)
	}

	// --wide on the terminal: nothing cut.
	if text := plain(tm.run("", "list", "--wide")); !strings.Contains(text, "rate limited (retry-after) on "+model) {
		t.Errorf("list --wide cut the reason:\n%s", text)
	}

	// Piped: whole cells, no colour, and every row of list has its
	// columns where the header has them.
	r := mustSucceed(t, u.llmkey("list"))
	if strings.Contains(r.stdout, "\x1b") || strings.Contains(r.stdout, "…sk") || !strings.Contains(r.stdout, "on "+model) {
		t.Errorf("piped list:\n%s", r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	head := lines[0]
	reason := strings.Index(head, "REASON")
	for _, l := range lines[1:] {
		f := strings.Fields(l[:reason])
		if len(f) != 8 || f[0] != "openai" {
			t.Errorf("piped list: %q has not the 8 one-word columns before REASON of %q", l, head)
		}
	}
	if os.Getenv("TERM") == "" {
		t.Log("(the test's own stdout is no terminal: as in CI)")
	}
}

// Ctrl-D at the secret prompt ends add with a message and changes
// nothing, as Ctrl-D at ssh-keygen's passphrase prompt does.
func TestCtrlDAtTheSecretPrompt(t *testing.T) {
	u := newUser(t)
	tm := newTmux(t, u)
	tm.tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "add", "sh", "-c", shellQuote(llmkeyBin)+" add openai work; echo exit=$?; sleep 600")
	screen := func() string { return tm.tmux("capture-pane", "-p", "-J", "-t", "add") }
	waitFor := func(s string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if sc := screen(); strings.Contains(sc, s) {
				return sc
			}
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q:\n%s", s, screen())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("secret")
	tm.tmux("send-keys", "-t", "add", "C-d")
	sc := waitFor("exit=")
	if !strings.Contains(sc, "no secret typed (Ctrl-D): nothing changed") || !strings.Contains(sc, "hint:") || !strings.Contains(sc, "exit=1") {
		t.Errorf("Ctrl-D at the prompt:\n%s", sc)
	}
	if _, err := os.Stat(u.keyfile()); err == nil && strings.Contains(readFile(t, u.keyfile()), "work") {
		t.Errorf("Ctrl-D added a key:\n%s", readFile(t, u.keyfile()))
	}
}

// stop, while a request is in flight, says after a moment what it waits
// for instead of waiting in silence.
func TestStopSaysWhatItWaitsFor(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	env := u.proxyEnv()
	resp := chatModel(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], "slow")
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("slow stream: %d", resp.StatusCode)
	}
	r := mustSucceed(t, u.llmkey("stop"))
	if !strings.Contains(r.stderr, "waiting for 1 request(s) in flight to finish") || !strings.Contains(r.stderr, "daemon stopped") {
		t.Errorf("stop with a request in flight:\n%v", r)
	}
	if r := mustSucceed(t, u.llmkey("start")); !strings.Contains(r.stderr, "started") {
		t.Fatal(r)
	}
	if r := mustSucceed(t, u.llmkey("stop")); strings.Contains(r.stderr, "waiting") {
		t.Errorf("an idle stop said it waits:\n%v", r)
	}
}
