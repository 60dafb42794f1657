// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tokenRow is one scoped token of "token list --json".
type tokenRow struct {
	ID      string
	State   string
	PID     int
	Label   string
	Expires *time.Time
}

func (u *user) tokens() map[string]tokenRow {
	u.t.Helper()
	r := mustSucceed(u.t, u.llmkey("token", "list", "--json"))
	var rows []tokenRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		u.fatalf("token list --json: %v\n%s", err, r.stdout)
	}
	out := map[string]tokenRow{}
	for _, row := range rows {
		out[row.Label] = row
	}
	return out
}

// refused fails the test unless the proxy answers tok 401 bad-token.
func refused(t *testing.T, base, tok, what string) {
	t.Helper()
	resp := chat(t, base, tok, nil)
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("X-Llmkey-Error") != "bad-token" {
		t.Errorf("%s: %d %q, want 401 bad-token", what, resp.StatusCode, resp.Header.Get("X-Llmkey-Error"))
	}
}

// exec's scoped token serves its command while it runs, under the pid
// token list shows, and is refused once the command has exited; env's
// has no command and ends in 7 days. The daemon drops ended tokens when
// it issues the next one, and token prune drops them now.
func TestScopedTokenEndsWithItsCommand(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, _ := u.oneKey(fake.URL, u.canary("sk-"))

	r := mustSucceed(t, u.llmkey("exec", "--key", "openai/a", "--label", "done", "--", "sh", "-c", `echo "$OPENAI_API_KEY"`))
	refused(t, base, strings.TrimSpace(r.stdout), "the token of a command that has exited")

	cmd := exec.Command(llmkeyBin, "exec", "--key", "openai/a", "--label", "running", "--", "sh", "-c", `echo "$OPENAI_API_KEY"; exec sleep 600`)
	cmd.Env = u.env
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	running := strings.TrimSpace(line)
	mustOK(t, chat(t, base, running, nil))
	if ts := u.tokens(); len(ts) != 1 || ts["running"].State != "live" || ts["running"].PID != cmd.Process.Pid {
		t.Errorf("token list while one command runs (pid %d), the one that ended removed: %+v", cmd.Process.Pid, ts)
	}
	cmd.Process.Kill()
	cmd.Wait()
	refused(t, base, running, "the token of a command killed")
	if ts := u.tokens(); ts["running"].State != "ended" {
		t.Errorf("token list after the command was killed: %+v", ts)
	}

	mustSucceed(t, u.llmkey("env", "--key", "openai/a", "--label", "shell"))
	ts := u.tokens()
	if len(ts) != 1 || ts["shell"].State != "live" || ts["shell"].PID != 0 || ts["shell"].Expires == nil ||
		ts["shell"].Expires.Sub(time.Now()) < 7*24*time.Hour-time.Hour || ts["shell"].Expires.Sub(time.Now()) > 7*24*time.Hour {
		t.Errorf("after env issued one more: %+v", ts)
	}
	mustSucceed(t, u.llmkey("exec", "--key", "openai/a", "--label", "another", "--", "true"))
	if r := mustSucceed(t, u.llmkey("token", "prune", "--dry-run")); !strings.Contains(r.stderr, "would remove 1 scoped token (1 ended)") {
		t.Errorf("prune --dry-run: %v", r)
	}
	if r := mustSucceed(t, u.llmkey("token", "prune")); !strings.Contains(r.stderr, "removed 1 scoped token (1 ended)") {
		t.Errorf("prune: %v", r)
	}
	if ts := u.tokens(); len(ts) != 1 || ts["shell"].State != "live" {
		t.Errorf("after prune: %+v", ts)
	}
}

// Scoped execs run day after day leave no tokens behind: tokens.json
// holds the ones in use, not one per exec ever run, and a restart keeps
// it so.
func TestScopedExecsLeaveNoTokensBehind(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	path := filepath.Join(u.stateDir(), "tokens.json")
	count := func() int {
		var all []json.RawMessage
		if err := json.Unmarshal([]byte(readFile(t, path)), &all); err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	for range 40 {
		mustSucceed(t, u.llmkey("exec", "--key", "openai/a", "--label", "daily", "--", "true"))
	}
	if n := count(); n > 1 {
		t.Errorf("tokens.json holds %d tokens after 40 execs that have exited", n)
	}
	u.stopDaemon()
	mustSucceed(t, u.llmkey("start"))
	if n := count(); n != 0 {
		t.Errorf("tokens.json holds %d tokens after a restart", n)
	}
}

// A revoke the daemon cannot write to disk (a directory where tokens.json
// goes: a write no permission lets through, root's neither) takes effect
// at once, but says it holds only until the daemon restarts, with the
// fix, and exits 1; status says the state is not persisted. Once the way
// is clear the daemon writes it, and it outlives a restart.
func TestRevokeThatCannotBeWritten(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, _ := u.oneKey(fake.URL, u.canary("sk-"))
	r := mustSucceed(t, u.llmkey("env", "--key", "openai/a", "--label", "tool", "--shell", "json"))
	var env map[string]*string
	json.Unmarshal([]byte(r.stdout), &env)
	scoped := *env["OPENAI_API_KEY"]
	id := u.tokens()["tool"].ID
	mustOK(t, chat(t, base, scoped, nil))

	path := filepath.Join(u.stateDir(), "tokens.json")
	os.Remove(path)
	if err := os.MkdirAll(filepath.Join(path, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	r = u.llmkey("token", "revoke", id[:8])
	if r.code != 1 || !strings.Contains(r.stderr, "llmkey: revoked the scoped token "+id+" until the daemon restarts: could not write it to "+path) ||
		!strings.Contains(r.stderr, "\nhint: make "+u.stateDir()+" writable again, or move what is in the way of tokens.json") {
		t.Errorf("a revoke that cannot be written: %v", r)
	}
	refused(t, base, scoped, "a token revoked in memory")
	if st, code := u.status(); code != 1 || !strings.Contains(strings.Join(toStrings(st["problems"]), "\n"), "state not persisted") {
		t.Errorf("status while the revoke is not written: %d %v", code, st["problems"])
	}

	os.RemoveAll(path)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), `"revoked"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoke was not written once tokens.json could be")
		}
	}
	u.stopDaemon()
	refused(t, u.proxyEnv()["LLMKEY_URL"], scoped, "a revoked token after a restart")
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// In a shell that took 'eval "$(llmkey env)"', a scoped exec leaves no
// other llmkey token in its command's environment: the providers outside
// the selection get the scoped token too, which the proxy answers 403
// not-selected.
func TestScopedExecInAShellThatTookEnv(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")})
	var shell []string
	for k, v := range u.proxyEnv() {
		shell = append(shell, k+"="+v)
	}
	unscoped := u.token()
	// The command runs on while the proxy is asked: its token ends with it.
	cmd := exec.Command(llmkeyBin, "exec", "--key", "openai/work", "--", "sh", "-c", "env; echo END; exec sleep 600")
	cmd.Env = append(append([]string{}, u.env...), shell...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	child := map[string]string{}
	for sc := bufio.NewScanner(out); sc.Scan() && sc.Text() != "END"; {
		line := sc.Text()
		u.assertNoCanary(line)
		if strings.Contains(line, unscoped) {
			t.Errorf("the unscoped token reached the command: %s", strings.SplitN(line, "=", 2)[0])
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			child[k] = v
		}
	}
	scoped := child["OPENAI_API_KEY"]
	if !strings.HasPrefix(scoped, "llmk-scoped-") || child["ANTHROPIC_API_KEY"] != scoped || child["GEMINI_API_KEY"] != scoped || child["LLMKEY_TOKEN"] != scoped {
		t.Fatalf("the command's keys: openai %q, anthropic %q, gemini %q, LLMKEY_TOKEN %q", scoped, child["ANTHROPIC_API_KEY"], child["GEMINI_API_KEY"], child["LLMKEY_TOKEN"])
	}
	req, _ := http.NewRequest("POST", child["ANTHROPIC_BASE_URL"]+"/v1/messages", strings.NewReader(`{"model":"claude-x","max_tokens":1,"messages":[]}`))
	req.Header.Set("x-api-key", scoped)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Llmkey-Error") != "not-selected" {
		t.Errorf("anthropic with the token for openai/work: %d %q", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"))
	}
}

// A help flag shows the help of the command it follows, a subcommand's
// included, and after arguments; a word llmkey does not know is never
// steered to a command that deletes something.
func TestHelpOnSubcommandsAndSafeSuggestions(t *testing.T) {
	u := newUser(t)
	for _, args := range [][]string{{"token", "list", "--help"}, {"token", "revoke", "--help"}, {"token", "revoke", "3f2a9c1e", "--help"},
		{"token", "prune", "-h"}, {"token", "prune", "--dry-run", "--help"}, {"service", "install", "--help"}, {"rm", "openai/work", "--help"}} {
		path := "llmkey " + args[0]
		if args[0] != "rm" {
			path += " " + args[1]
		}
		r := u.llmkey(args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "NAME:\n   "+path+" - ") || r.stderr != "" {
			t.Errorf("%v: %v", args, r)
		}
	}
	if r := u.llmkey("help", "token"); r.code != 0 || !strings.Contains(r.stdout, "COMMANDS:\n   list ") || !strings.Contains(r.stdout, "\n   prune ") {
		t.Errorf("help token: %v", r)
	}
	for args, hint := range map[string]string{
		"revoke":      "hint: did you mean 'llmkey token revoke'?",
		"remov":       "hint: 'llmkey help' lists the commands",
		"token revok": "hint: 'llmkey token' has list, revoke, prune",
		"token rm":    "hint: 'llmkey token' has list, revoke, prune",
		"prune":       "hint: did you mean 'llmkey token prune'?",
	} {
		r := u.llmkey(strings.Fields(args)...)
		if r.code != 2 || !strings.Contains(r.stderr, hint) || strings.Contains(r.stderr, "'llmkey rm") || strings.Contains(r.stderr, "'llmkey remove") {
			t.Errorf("llmkey %s: %v", args, r)
		}
	}
}
