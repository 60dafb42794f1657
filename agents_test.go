// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The coding agents and SDKs these tests run are real, installed from
// npm at pinned versions by .ci/run into LLMKEY_NPM_DIR (kept between
// runs); the upstream they reach through llmkey is the fake, on loopback.

// npmDir is where .ci/run installed the npm tools.
func npmDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("LLMKEY_NPM_DIR")
	if d == "" {
		t.Skip("LLMKEY_NPM_DIR is not set: .ci/run installs the real tools there (npm install of the pinned versions)")
	}
	return d
}

// npmBin is an installed tool's command.
func npmBin(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(npmDir(t), "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not installed in LLMKEY_NPM_DIR: %v", name, err)
	}
	return p
}

// Codex CLI, after 'llmkey setup codex', completes a turn through exec
// over a WebSocket: the first key, refused with 429 at the handshake,
// gives way to the second; the turn counts as complete with its tokens,
// and no attempt failed but the refused one. setup run twice changes
// nothing, keeps the user's own settings, and its undo restores the file
// byte for byte.
func TestCodexThroughExec(t *testing.T) {
	codex := npmBin(t, "codex")
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-proj-a-"), u.canary("sk-proj-b-")
	fake.on(a, answer(429, map[string]string{"Retry-After": "30"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
	u.twoKeys(fake.URL, "openai", `strategy = "fill-first"`, a, b)

	cfg := filepath.Join(u.home, ".codex", "config.toml")
	own := "# my own settings\nmodel = \"gpt-5\"\nmodel_provider = \"openai\"\n\n[tui]\nnotifications = false # quiet\n"
	writeFile(t, cfg, own, 0o600)
	r := mustSucceed(t, u.llmkey("setup", "codex", "--dry-run"))
	if readFile(t, cfg) != own || !strings.Contains(r.stdout, "+[model_providers.llmkey]") {
		t.Fatalf("dry run: %v", r)
	}
	mustSucceed(t, u.llmkey("setup", "codex"))
	written := readFile(t, cfg)
	if !strings.Contains(written, "# my own settings") || !strings.Contains(written, "notifications = false # quiet") {
		t.Errorf("setup lost the user's settings:\n%s", written)
	}
	if r := mustSucceed(t, u.llmkey("setup", "codex")); readFile(t, cfg) != written || !strings.Contains(r.stderr, "set up already") {
		t.Errorf("setup run again: %v\n%s", r, readFile(t, cfg))
	}
	if r := u.llmkey("doctor"); strings.Contains(r.stdout, "Codex") {
		t.Errorf("doctor after setup: %v", r)
	}

	work := t.TempDir()
	cmd := exec.Command(llmkeyBin, "exec", "--", codex, "exec", "--skip-git-repo-check", "say hi")
	cmd.Env, cmd.Dir = u.env, work
	out, err := cmd.CombinedOutput()
	u.assertNoCanary(string(out))
	if err != nil || !strings.Contains(string(out), "hello from fake") {
		t.Fatalf("codex exec through llmkey: %v\n%s", err, out)
	}
	var sockets int
	for _, s := range fake.requests() {
		if s.Path == "/v1/responses" {
			sockets++
		}
	}
	if sockets < 2 {
		t.Errorf("the upstream saw %d WebSocket handshakes, want the refused one and the served one", sockets)
	}
	rep := u.usage("--by", "key")
	for _, row := range rep.Rows {
		switch row.Key {
		case "a":
			if row.Requests != 1 || row.Failures["rate-limited"] != 1 {
				t.Errorf("key a: %+v", row)
			}
		case "b":
			if row.Requests < 1 || row.Successes != row.Requests || row.Partial != 0 || len(row.Failures) != 0 || row.In < 20 || row.Out < 5 {
				t.Errorf("key b: %+v", row)
			}
		}
	}

	mustSucceed(t, u.llmkey("setup", "codex", "--undo"))
	if got := readFile(t, cfg); got != own {
		t.Errorf("undo left:\n%q\nwant:\n%q", got, own)
	}
}

// A rate limit inside an open socket (the upstream answers Codex's
// response.create with an error event, as the Responses API over
// WebSocket wraps a 429) cools the key, and the request, which llmkey
// still holds, goes on the next key's socket before Codex hears of it:
// the turn completes, and usage shows the refused attempt.
func TestCodexRateLimitedInsideTheSocket(t *testing.T) {
	codex := npmBin(t, "codex")
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-proj-a-"), u.canary("sk-proj-b-")
	fake.onSocket(a, `{"type":"error","status":429,"error":{"type":"rate_limit_exceeded","code":"rate_limit_exceeded","message":"Rate limit reached for gpt-5"},"headers":{"retry-after":"30"}}`)
	u.twoKeys(fake.URL, "openai", `strategy = "fill-first"`, a, b)
	mustSucceed(t, u.llmkey("setup", "codex"))
	cmd := exec.Command(llmkeyBin, "exec", "--", codex, "exec", "--skip-git-repo-check", "say hi")
	cmd.Env, cmd.Dir = u.env, t.TempDir()
	out, err := cmd.CombinedOutput()
	u.assertNoCanary(string(out))
	if err != nil || !strings.Contains(string(out), "hello from fake") {
		t.Fatalf("codex exec through llmkey: %v\n%s", err, out)
	}
	st, _ := u.status()
	for _, k := range st["providers"].(map[string]any)["openai"].(map[string]any)["keys"].([]any) {
		k := k.(map[string]any)
		if k["name"] == "a" && (k["state"] != "cooling" || k["cooldown_seconds"].(float64) < 20) {
			t.Errorf("key a after a 429 inside its socket: %v", k)
		}
	}
	for _, row := range u.usage("--by", "key").Rows {
		switch row.Key {
		case "a":
			if row.Requests != 1 || row.Failures["rate-limited"] != 1 || row.Successes != 0 {
				t.Errorf("key a: %+v", row)
			}
		case "b":
			if row.Successes < 1 || len(row.Failures) != 0 {
				t.Errorf("key b: %+v", row)
			}
		}
	}
}

// The openai SDK's Responses WebSocket client works through exec.
func TestOpenAISDKResponsesWebSocketThroughExec(t *testing.T) {
	dir := npmDir(t)
	u := newUser(t)
	fake := newFakeProvider(t)
	key := u.canary("sk-proj-")
	u.oneKey(fake.URL, key)
	script := filepath.Join(t.TempDir(), "ws.js")
	writeFile(t, script, `
const OpenAI = require('openai');
const { ResponsesWS } = require('openai/resources/responses/ws');
const rws = new ResponsesWS(new OpenAI());
const timer = setTimeout(() => { console.log('TIMEOUT'); process.exit(1); }, 10000);
rws.on('error', (e) => { console.log('ERROR', e && e.message); process.exit(1); });
rws.on('response.completed', (ev) => {
  console.log('OK', ev.response.output[0].content[0].text);
  clearTimeout(timer);
  rws.close({ code: 1000, reason: 'done' });
});
rws.socket.on('open', () => rws.send({ type: 'response.create', model: 'gpt-5', input: 'hi' }));
`, 0o600)
	cmd := exec.Command(llmkeyBin, "exec", "--", "node", script)
	cmd.Env = append(append([]string{}, u.env...), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.CombinedOutput()
	u.assertNoCanary(string(out))
	if err != nil || !strings.Contains(string(out), "OK hello from fake") {
		t.Fatalf("the SDK's ResponsesWS through llmkey: %v\n%s", err, out)
	}
	found := false
	for _, s := range fake.requests() {
		if s.Path == "/v1/responses" && s.Auth == "Bearer "+key {
			found = true
		}
	}
	if !found {
		t.Error("the upstream saw no WebSocket with the real key")
	}
}

// doctor finds each trap that keeps a tool off the proxy, names the fix
// and exits 1; with none of them it exits 0; without a daemon, 3.
func TestDoctorFindsTheTraps(t *testing.T) {
	u := newUser(t)
	if r := u.llmkey("doctor"); r.code != 3 || !strings.Contains(r.stdout, "the daemon is not running") {
		t.Errorf("doctor without a daemon: %v", r)
	}
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-"), "gemini": u.canary("AIza")})
	mustSucceed(t, u.llmkey("start"))
	if r := u.llmkey("doctor"); r.code != 0 || !strings.Contains(r.stdout, "no problems found") {
		t.Fatalf("doctor on a clean setup: %v", r)
	}

	codexCfg := filepath.Join(u.home, ".codex", "config.toml")
	writeFile(t, codexCfg, "model_provider = \"openai\"\n", 0o600)
	writeFile(t, filepath.Join(u.home, ".codex", "auth.json"), `{"OPENAI_API_KEY":null,"tokens":{"id_token":"x","access_token":"y"}}`, 0o600)
	writeFile(t, filepath.Join(u.home, ".gemini", "settings.json"), `{"security":{"auth":{"selectedType":"oauth-personal"}}}`, 0o600)
	writeFile(t, filepath.Join(u.home, ".config", "opencode", "opencode.json"), `{"$schema":"https://opencode.ai/config.json"}`, 0o600)
	traps := []struct{ problem, fix string }{
		{"Codex has no llmkey model provider", "llmkey setup codex"},
		{"Codex is logged in with ChatGPT", "llmkey setup codex"},
		{"Gemini CLI's auth method is \"oauth-personal\"", "llmkey setup gemini"},
		{"opencode's Google provider goes to unset", "llmkey setup opencode"},
		{"ANTHROPIC_API_URL is set in this shell", "unset it"},
		{"GOOGLE_GENAI_USE_VERTEXAI is set in this shell", "unset it"},
	}
	r := u.run(nil, []string{"ANTHROPIC_API_URL=http://127.0.0.1:9", "GOOGLE_GENAI_USE_VERTEXAI=true"}, "doctor")
	for _, tr := range traps {
		if !strings.Contains(r.stdout, tr.problem) || !strings.Contains(r.stdout, tr.fix) {
			t.Errorf("doctor misses %q (fix %q):\n%s", tr.problem, tr.fix, r.stdout)
		}
	}
	if r.code != 1 {
		t.Errorf("doctor with traps: exit %d", r.code)
	}

	for _, tool := range []string{"codex", "gemini", "opencode"} {
		mustSucceed(t, u.llmkey("setup", tool))
	}
	if r := u.llmkey("doctor"); r.code != 0 {
		t.Errorf("doctor after setup: %v", r)
	}
	// A config for another port, as after the daemon moved.
	writeFile(t, codexCfg, strings.ReplaceAll(readFile(t, codexCfg), "127.0.0.1:", "127.0.0.1:1"), 0o600)
	if r := u.llmkey("doctor"); r.code != 1 || !strings.Contains(r.stdout, "another port") {
		t.Errorf("doctor with a stale port: %v", r)
	}
	writeFile(t, codexCfg, strings.Replace(readFile(t, codexCfg), "/openai\"", "/openai/v1\"", 1), 0o600)
	if r := u.llmkey("doctor"); r.code != 1 || !strings.Contains(r.stdout, "/v1/v1") {
		t.Errorf("doctor with a double /v1: %v", r)
	}
	if r := mustSucceed(t, u.llmkey("setup", "claude")); !strings.Contains(r.stderr, "needs no setup") {
		t.Errorf("setup claude: %v", r)
	}
}

// exec says when a tool's configuration is for another port than the
// daemon's, as after the daemon moved.
func TestExecSaysWhenAToolsSetupIsStale(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	bin := filepath.Join(u.home, "bin")
	writeFile(t, filepath.Join(bin, "codex"), "#!/bin/sh\nexit 0\n", 0o755)
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	if r := u.run(nil, env, "exec", "--", "codex"); r.code != 0 || !strings.Contains(r.stderr, "Codex has no llmkey model provider") {
		t.Errorf("codex not set up: %v", r)
	}
	mustSucceed(t, u.llmkey("setup", "codex"))
	if r := u.run(nil, env, "exec", "--", "codex"); strings.Contains(r.stderr, "warning") {
		t.Errorf("codex set up: %v", r)
	}
	cfg := filepath.Join(u.home, ".codex", "config.toml")
	writeFile(t, cfg, strings.ReplaceAll(readFile(t, cfg), "127.0.0.1:", "127.0.0.1:1"), 0o600)
	if r := u.run(nil, env, "exec", "--", "codex"); !strings.Contains(r.stderr, "another port") || !strings.Contains(r.stderr, "hint: llmkey setup codex") {
		t.Errorf("codex set up for another port: %v", r)
	}
}

// Gemini CLI, after 'llmkey setup gemini', answers -p through exec with
// the real key at the upstream.
func TestGeminiCLIThroughExec(t *testing.T) {
	gemini := npmBin(t, "gemini")
	u := newUser(t)
	fake := newFakeProvider(t)
	key := u.canary("AIza")
	u.writeKeyfile(fake.URL, map[string]string{"gemini": key})
	mustSucceed(t, u.llmkey("setup", "gemini"))
	work := t.TempDir()
	cmd := exec.Command(llmkeyBin, "exec", "--", gemini, "--skip-trust", "-m", "gemini-x", "-p", "say hi")
	cmd.Env, cmd.Dir = u.env, work
	out, err := cmd.CombinedOutput()
	u.assertNoCanary(string(out))
	if err != nil || !strings.Contains(string(out), "hello") {
		t.Fatalf("gemini -p through llmkey: %v\n%s", err, out)
	}
	if !fake.saw(func(s seenRequest) bool { return s.GoogKey == key && strings.Contains(s.Path, "gemini-x") }) {
		t.Errorf("the upstream saw no request with the real key: %+v", fake.requests())
	}
}

// opencode, after 'llmkey setup opencode', runs with an OpenAI, an
// Anthropic and a Google model through exec, each with its real key, and
// with the Google one again after the daemon moved to another port,
// without setup again ({env:LLMKEY_URL}).
func TestOpencodeThroughExec(t *testing.T) {
	opencode := npmBin(t, "opencode")
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")}
	u.writeKeyfile(fake.URL, keys)
	mustSucceed(t, u.llmkey("setup", "opencode"))
	for _, m := range []struct{ model, key string }{{"openai/gpt-4o", keys["openai"]}, {"anthropic/claude-sonnet-4-5", keys["anthropic"]}, {"google/gemini-2.5-flash", keys["gemini"]}} {
		work := t.TempDir()
		cmd := exec.Command(llmkeyBin, "exec", "--", opencode, "run", "-m", m.model, "say hi")
		cmd.Env, cmd.Dir = append(append([]string{}, u.env...), "OPENCODE_DISABLE_AUTOUPDATE=1", "OPENCODE_DISABLE_MODELS_FETCH=1"), work
		out, err := cmd.CombinedOutput()
		u.assertNoCanary(string(out))
		if err != nil || !strings.Contains(string(out), "hello") {
			t.Errorf("opencode run -m %s through llmkey: %v\n%s", m.model, err, out)
			continue
		}
		if !fake.saw(func(s seenRequest) bool { return s.credential() == m.key }) {
			t.Errorf("%s: the upstream saw no request with its real key", m.model)
		}
	}
	u.moveDaemon()
	before := fake.count(keys["gemini"])
	u.agent(t.TempDir(), []string{"OPENCODE_DISABLE_AUTOUPDATE=1", "OPENCODE_DISABLE_MODELS_FETCH=1"}, opencode, "run", "-m", "google/gemini-2.5-flash", "say hi again")
	if fake.count(keys["gemini"]) == before {
		t.Error("after the move: the upstream saw no Google request with the real key")
	}
}

// runClaude runs Claude Code (model claude-x) with args under llmkey exec
// in dir, and fails unless it answers with the fake's "hello" and shows
// no secret.
func (u *user) runClaude(claude, dir string, args ...string) {
	u.t.Helper()
	cmd := exec.Command(llmkeyBin, append([]string{"exec", "--", claude, "--model", "claude-x"}, args...)...)
	cmd.Env = append(append([]string{}, u.env...), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	u.assertNoCanary(string(out))
	if err != nil || !strings.Contains(string(out), "hello") {
		u.fatalf("claude %v through llmkey: %v\n%s", args, err, out)
	}
}

// Claude Code -p works through exec as it is (setup says it needs
// nothing), with the real key at the upstream.
func TestClaudeCodeThroughExec(t *testing.T) {
	claude := npmBin(t, "claude")
	u := newUser(t)
	fake := newFakeProvider(t)
	key := u.canary("sk-ant-api03-")
	u.writeKeyfile(fake.URL, map[string]string{"anthropic": key})
	u.runClaude(claude, t.TempDir(), "-p", "say hi")
	if !fake.saw(func(s seenRequest) bool { return s.APIKey == key && s.Path == "/v1/messages" }) {
		t.Errorf("the upstream saw no /v1/messages with the real key: %+v", fake.requests())
	}
}

// Two runs of one Claude Code session (--session-id, then --resume) keep
// to one key of three under round-robin, by the session header it sends,
// while other traffic turns the rotation.
func TestClaudeCodeSessionKeepsItsKey(t *testing.T) {
	claude := npmBin(t, "claude")
	u := newUser(t)
	fake := newFakeProvider(t)
	var keys [][3]string
	for _, n := range []string{"a", "b", "c"} {
		keys = append(keys, [3]string{"anthropic/" + n, u.canary("sk-ant-api03-" + n + "-"), ""})
	}
	providers := fmt.Sprintf("[provider.anthropic]\nbase_url = %q\n", fake.URL)
	base, token := u.keysFile("", providers, keys...)
	work := t.TempDir()
	const session = "5f0c2a4e-8c1d-4b7a-9e3f-2d6b1a0c9e11"
	for _, args := range [][]string{{"-p", "say hi", "--session-id", session}, {"-p", "say more", "--resume", session}} {
		u.runClaude(claude, work, args...)
		for range 2 { // other traffic between the runs
			resp, _ := post(t, base, token, "/anthropic/v1/messages", `{"model":"claude-x","max_tokens":5,"messages":[]}`, nil)
			resp.Body.Close()
		}
	}
	used := map[string]int{}
	for _, s := range fake.requests() {
		if s.Path == "/v1/messages" && s.Session != "" {
			if s.Session != session {
				t.Errorf("claude sent session %q, not the one it was given", s.Session)
			}
			used[s.APIKey]++
		}
	}
	if len(used) != 1 {
		t.Errorf("one Claude Code session went to %d keys: %v", len(used), used)
	}
}

// doctor also finds a daemon of another version and a provider with no
// usable key; setup gemini's undo restores the user's settings.json byte
// for byte.
func TestDoctorFindsTheDaemonsTraps(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	key := u.canary("sk-")
	fake.on(key, answer(401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`))
	base, token := u.oneKey(fake.URL, key)
	resp := chat(t, base, token, nil)
	resp.Body.Close()
	if r := u.llmkey("doctor"); r.code != 1 || !strings.Contains(r.stdout, "openai has no usable key") {
		t.Errorf("doctor with a parked key: %v", r)
	}
	u.stopDaemon()

	old := filepath.Join(t.TempDir(), "llmkey-old")
	if out, err := exec.Command("go", "build", "-o", old, "-ldflags", "-X github.com/llmkey/llmkey/cli.Version=0.0.1-old", ".").CombinedOutput(); err != nil {
		t.Fatalf("build the old version: %v\n%s", err, out)
	}
	start := exec.Command(old, "start")
	start.Env = u.env
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("old start: %v\n%s", err, out)
	}
	if r := u.llmkey("doctor"); r.code != 1 || !strings.Contains(r.stdout, "the daemon runs version 0.0.1-old") || !strings.Contains(r.stdout, "llmkey restart") {
		t.Errorf("doctor against an old daemon: %v", r)
	}

	settings := filepath.Join(u.home, ".gemini", "settings.json")
	own := "{\n  // not JSON: comments are refused\n}\n"
	writeFile(t, settings, own, 0o600)
	if r := u.llmkey("setup", "gemini"); r.code == 0 || readFile(t, settings) != own {
		t.Errorf("setup gemini on a file with comments: %v", r)
	}
	own = "{\n  \"theme\": \"GitHub\",\n  \"security\": {\"auth\": {\"selectedType\": \"oauth-personal\"}}\n}\n"
	writeFile(t, settings, own, 0o600)
	mustSucceed(t, u.llmkey("setup", "gemini"))
	if got := readFile(t, settings); !strings.Contains(got, `"theme": "GitHub"`) || !strings.Contains(got, `"selectedType": "gemini-api-key"`) {
		t.Errorf("setup gemini:\n%s", got)
	}
	mustSucceed(t, u.llmkey("setup", "gemini", "--undo"))
	if got := readFile(t, settings); got != own {
		t.Errorf("undo left:\n%q\nwant:\n%q", got, own)
	}
}
