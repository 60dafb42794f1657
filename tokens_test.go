package main

import (
	"bufio"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

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
		{"token", "list", "-h"}, {"token", "list", "--json", "--help"}, {"service", "install", "--help"}, {"rm", "openai/work", "--help"}} {
		path := "llmkey " + args[0]
		if args[0] != "rm" {
			path += " " + args[1]
		}
		r := u.llmkey(args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "NAME:\n   "+path+" - ") || r.stderr != "" {
			t.Errorf("%v: %v", args, r)
		}
	}
	if r := u.llmkey("help", "token"); r.code != 0 || !strings.Contains(r.stdout, "COMMANDS:\n   list ") || !strings.Contains(r.stdout, "\n   revoke ") {
		t.Errorf("help token: %v", r)
	}
	for args, hint := range map[string]string{
		"revoke":      "hint: did you mean 'llmkey token revoke'?",
		"remov":       "hint: 'llmkey help' lists the commands",
		"token revok": "hint: 'llmkey token' has list, revoke",
		"token rm":    "hint: 'llmkey token' has list, revoke",
		"install":     "hint: did you mean 'llmkey service install'?",
	} {
		r := u.llmkey(strings.Fields(args)...)
		if r.code != 2 || !strings.Contains(r.stderr, hint) || strings.Contains(r.stderr, "'llmkey rm") || strings.Contains(r.stderr, "'llmkey remove") {
			t.Errorf("llmkey %s: %v", args, r)
		}
	}
}
