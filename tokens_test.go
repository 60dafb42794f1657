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
