// SPDX-License-Identifier: MIT

package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The agents that need "llmkey setup" before "llmkey exec -- TOOL" works,
// real ones from npm (pinned in .ci/run), each completing a prompt against
// the fake upstream with the real key, and setup's undo putting the
// user's file back byte for byte.

// agent runs argv under llmkey exec in dir with the user's environment
// and extra, and fails unless the tool answered with the fake's "hello".
func (u *user) agent(dir string, extra []string, argv ...string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, llmkeyBin, append([]string{"exec", "--"}, argv...)...)
	cmd.Env = append(append([]string{}, u.env...), extra...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	u.assertNoCanary(string(out))
	if err != nil || !strings.Contains(string(out), "hello") {
		u.fatalf("%s %v through llmkey: %v\n%s", filepath.Base(argv[0]), argv[1:], err, out)
	}
	return string(out)
}

var listenLine = regexp.MustCompile(`listen = "[^"]*"`)

// moveDaemon restarts the daemon on another free port, as after a change
// of [daemon] listen, and returns the new proxy URL.
func (u *user) moveDaemon() string {
	u.t.Helper()
	old := u.proxyEnv()["LLMKEY_URL"]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		u.t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	writeFile(u.t, u.keyfile(), listenLine.ReplaceAllString(readFile(u.t, u.keyfile()), `listen = "`+addr+`"`), 0o600)
	mustSucceed(u.t, u.llmkey("restart"))
	now := u.proxyEnv()["LLMKEY_URL"]
	if now == old || !strings.HasSuffix(now, addr) {
		u.fatalf("the daemon did not move: %s, then %s", old, now)
	}
	return now
}

// setupRoundTrip runs setup for tool on a file that holds own: a dry run
// changes nothing, setup keeps the user's bytes, and run again says it is
// set up already. It returns what setup wrote.
func (u *user) setupRoundTrip(tool, path, own string, keep ...string) string {
	u.t.Helper()
	if own != "" {
		writeFile(u.t, path, own, 0o600)
	}
	if r := mustSucceed(u.t, u.llmkey("setup", tool, "--dry-run")); (own != "" && readFile(u.t, path) != own) || !strings.Contains(r.stdout, "+") {
		u.fatalf("setup %s --dry-run: %v", tool, r)
	}
	mustSucceed(u.t, u.llmkey("setup", tool))
	written := readFile(u.t, path)
	for _, k := range keep {
		if !strings.Contains(written, k) {
			u.errorf("setup %s lost %q:\n%s", tool, k, written)
		}
	}
	if r := mustSucceed(u.t, u.llmkey("setup", tool)); readFile(u.t, path) != written || !strings.Contains(r.stderr, "set up already") {
		u.errorf("setup %s run again: %v\n%s", tool, r, readFile(u.t, path))
	}
	if r := u.llmkey("doctor"); strings.Contains(r.stdout, "("+path) {
		u.errorf("doctor after setup %s: %v", tool, r)
	}
	return written
}

// Qwen Code, after 'llmkey setup qwen', answers -p through exec: its
// first key refused with 429, the second serves; after the daemon moved
// to another port it still does, without setup again (its file holds no
// port); undo gives the user's settings back byte for byte.
func TestQwenCodeThroughExec(t *testing.T) {
	qwen := npmBin(t, "qwen")
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-proj-a-"), u.canary("sk-proj-b-")
	fake.on(a, answer(429, map[string]string{"Retry-After": "30"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
	u.twoKeys(fake.URL, "openai", `strategy = "fill-first"`, a, b)
	settings := filepath.Join(u.home, ".qwen", "settings.json")
	own := "{\n  \"$version\": 4,\n  \"ui\": {\n    \"theme\": \"GitHub\"\n  }\n}\n"
	u.setupRoundTrip("qwen", settings, own, `"theme": "GitHub"`, `"selectedType": "openai"`)

	work := t.TempDir()
	u.agent(work, nil, qwen, "-p", "say hi", "-m", "gpt-x")
	if !fake.saw(func(s seenRequest) bool { return s.Auth == "Bearer "+b && s.Path == "/v1/chat/completions" }) || fake.count(a) != 1 {
		u.errorf("the upstream saw: %+v", fake.requests())
	}
	u.moveDaemon()
	u.agent(work, nil, qwen, "-p", "say hi again", "-m", "gpt-x")
	mustSucceed(t, u.llmkey("setup", "qwen", "--undo"))
	if got := readFile(t, settings); got != own {
		t.Errorf("undo left:\n%q\nwant:\n%q", got, own)
	}
}

// Kilo CLI, after 'llmkey setup kilo', runs with an OpenAI, an Anthropic
// and a Google model through exec, each with its real key, and with the
// Google one again after the daemon moved to another port, without setup
// again ({env:LLMKEY_URL}). Undo gives the file Kilo made back byte for
// byte. On a home without one, setup writes it as Kilo would; Kilo's
// first run adds to it, and undo takes llmkey's values out of it, what
// Kilo added kept.
func TestKiloCLIThroughExec(t *testing.T) {
	kilo := npmBin(t, "kilo")
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")}
	u.writeKeyfile(fake.URL, keys)
	work := t.TempDir()
	env := []string{"KILO_DISABLE_AUTOUPDATE=1", "KILO_DISABLE_MODELS_FETCH=1"}
	// A user of Kilo: its first run made its file.
	u.agent(work, env, kilo, "run", "-m", "openai/gpt-4o", "say hi")
	cfg := filepath.Join(u.home, ".config", "kilo", "kilo.jsonc")
	own := readFile(t, cfg)
	u.setupRoundTrip("kilo", cfg, own, `"$schema": "https://app.kilo.ai/config.json"`, `{env:LLMKEY_URL}/gemini/v1beta`)

	for _, m := range []struct{ model, key string }{{"openai/gpt-4o", keys["openai"]}, {"anthropic/claude-sonnet-4-5", keys["anthropic"]}, {"google/gemini-2.5-flash", keys["gemini"]}} {
		u.agent(work, env, kilo, "run", "-m", m.model, "say hi")
		if !fake.saw(func(s seenRequest) bool { return s.credential() == m.key }) {
			u.errorf("%s: the upstream saw no request with its real key", m.model)
		}
	}
	u.moveDaemon()
	before := fake.count(keys["gemini"])
	u.agent(work, env, kilo, "run", "-m", "google/gemini-2.5-flash", "say hi again")
	if fake.count(keys["gemini"]) == before {
		u.errorf("after the move: the upstream saw no Google request with the real key")
	}
	mustSucceed(t, u.llmkey("setup", "kilo", "--undo"))
	if got := readFile(t, cfg); got != own {
		t.Errorf("undo left:\n%q\nwant:\n%q", got, own)
	}

	fresh := newUser(t)
	fresh.writeKeyfile(fake.URL, keys)
	cfg = filepath.Join(fresh.home, ".config", "kilo", "kilo.jsonc")
	mustSucceed(t, fresh.llmkey("setup", "kilo"))
	if got := readFile(t, cfg); !strings.HasPrefix(got, "{\n  \"provider\"") || !strings.Contains(got, `"$schema": "https://app.kilo.ai/config.json"`) {
		t.Errorf("setup on a home without Kilo's file:\n%s", got)
	}
	fresh.agent(t.TempDir(), env, kilo, "run", "-m", "google/gemini-2.5-flash", "say hi")
	kilos := readFile(t, cfg)
	if !strings.Contains(kilos, `"permission"`) {
		t.Fatalf("Kilo no longer adds its bash permission on its first run; the docs say it does:\n%s", kilos)
	}
	mustSucceed(t, fresh.llmkey("setup", "kilo", "--undo"))
	if got := readFile(t, cfg); strings.Contains(got, "LLMKEY") || strings.Contains(got, `"provider"`) || !strings.Contains(got, `"permission"`) {
		t.Errorf("undo after Kilo added to the file setup made left:\n%s\nKilo's:\n%s", got, kilos)
	}
}

// pi, after 'llmkey setup pi', runs with an OpenAI, an Anthropic and a
// Google model through exec, each with its real key, its own provider
// kept. pi takes base URLs as they are, so after the daemon moved exec
// and doctor say so, and setup again fixes it. Undo gives models.json
// back byte for byte.
func TestPiThroughExec(t *testing.T) {
	pi := npmBin(t, "pi")
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")}
	u.writeKeyfile(fake.URL, keys)
	models := filepath.Join(u.home, ".pi", "agent", "models.json")
	own := "{\n  \"providers\": {\n    \"ollama\": {\n      \"baseUrl\": \"http://localhost:11434/v1\",\n      \"api\": \"openai-completions\",\n      \"apiKey\": \"ollama\",\n      \"models\": [{ \"id\": \"llama3.1:8b\" }]\n    }\n  }\n}\n"
	u.setupRoundTrip("pi", models, own, `"ollama": {`)

	work := t.TempDir()
	run := func(model string) {
		u.agent(work, []string{"PI_OFFLINE=1"}, pi, "--no-session", "-p", "--model", model, "say hi")
	}
	for _, m := range []struct{ model, key string }{{"openai/gpt-4o", keys["openai"]}, {"anthropic/claude-sonnet-4-5", keys["anthropic"]}, {"google/gemini-2.5-flash", keys["gemini"]}} {
		run(m.model)
		if !fake.saw(func(s seenRequest) bool { return s.credential() == m.key }) {
			u.errorf("%s: the upstream saw no request with its real key", m.model)
		}
	}
	u.moveDaemon()
	if r := u.llmkey("doctor"); r.code != 1 || !strings.Contains(r.stdout, "pi's openai provider points at another port") {
		u.errorf("doctor after the daemon moved: %v", r)
	}
	mustSucceed(t, u.llmkey("setup", "pi"))
	run("openai/gpt-4o")
	mustSucceed(t, u.llmkey("setup", "pi", "--undo"))
	if got := readFile(t, models); got != own {
		t.Errorf("undo left:\n%q\nwant:\n%q", got, own)
	}
}

// Continue's cn, after 'llmkey setup continue', answers -p through exec
// with llmkey's first model and the real key at the upstream, and again
// after the daemon moved (${{ secrets.LLMKEY_URL }}); undo gives the
// user's config.yaml back byte for byte. With an Anthropic key, exec sets
// ANTHROPIC_API_KEY, which cn -p writes into config.yaml with models of
// its own: doctor finds the token there and says the fix, and cn -p
// given --config leaves the file as it is.
func TestContinueCLIThroughExec(t *testing.T) {
	cn := npmBin(t, "cn")
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"openai": u.canary("sk-proj-"), "gemini": u.canary("AIza")}
	u.writeKeyfile(fake.URL, keys)
	cfg := filepath.Join(u.home, ".continue", "config.yaml")
	own := "name: Mine\nversion: 1.0.0\nschema: v1\n\nmodels:\n  - name: local\n    provider: ollama\n    model: llama3.1:8b\n    roles: [chat]\n"
	u.setupRoundTrip("continue", cfg, own, "provider: ollama", "apiBase: ${{ secrets.LLMKEY_URL }}/openai/")

	work := t.TempDir()
	u.agent(work, nil, cn, "-p", "say hi")
	if !fake.saw(func(s seenRequest) bool { return s.Auth == "Bearer "+keys["openai"] }) {
		u.errorf("the upstream saw: %+v", fake.requests())
	}
	u.moveDaemon()
	u.agent(work, nil, cn, "-p", "say hi again")
	mustSucceed(t, u.llmkey("setup", "continue", "--undo"))
	if got := readFile(t, cfg); got != own {
		t.Errorf("undo left:\n%q\nwant:\n%q", got, own)
	}

	keys["anthropic"] = u.canary("sk-ant-api03-")
	u.writeKeyfile(fake.URL, keys)
	mustSucceed(t, u.llmkey("restart"))
	mustSucceed(t, u.llmkey("setup", "continue"))
	written := readFile(t, cfg)
	u.agent(work, nil, cn, "-p", "--config", cfg, "say hi")
	if got := readFile(t, cfg); got != written {
		t.Errorf("cn -p --config changed the file:\n%s", got)
	}
	u.agent(work, nil, cn, "-p", "say hi")
	if !strings.Contains(readFile(t, cfg), "llmk-local-") {
		t.Fatalf("cn -p no longer writes ANTHROPIC_API_KEY into its config; the docs say it does:\n%s", readFile(t, cfg))
	}
	if r := u.llmkey("doctor"); r.code != 1 || !strings.Contains(r.stdout, "Continue's cn keeps an llmkey token in "+cfg) || !strings.Contains(r.stdout, "--config") ||
		strings.Contains(r.stdout, "llmk-local-") {
		u.errorf("doctor with the token in cn's config: %v", r)
	}
}

// cline, after 'llmkey setup cline', answers through exec with its
// openai-compatible provider: the first key refused with 429, the second
// serves. Its background hub keeps the environment of the run that
// started it: doctor finds one started outside exec. After the daemon moved, exec says the file is for another
// port, and setup again with the hub stopped fixes it. Undo before cline
// rewrites the file gives it back byte for byte; after, it takes out
// llmkey's values alone, what cline wrote kept.
func TestClineThroughExec(t *testing.T) {
	cline := npmBin(t, "cline")
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-proj-a-"), u.canary("sk-proj-b-")
	fake.on(a, answer(429, map[string]string{"Retry-After": "30"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
	u.twoKeys(fake.URL, "openai", `strategy = "fill-first"`, a, b)
	providers := filepath.Join(u.home, ".cline", "data", "settings", "providers.json")
	own := "{\n  \"version\": 1,\n  \"lastUsedProvider\": \"anthropic\",\n  \"modes\": {},\n  \"providers\": {}\n}"
	u.setupRoundTrip("cline", providers, own, `"modes": {}`)
	mustSucceed(t, u.llmkey("setup", "cline", "--undo"))
	if got := readFile(t, providers); got != own {
		t.Errorf("undo left:\n%q\nwant:\n%q", got, own)
	}
	mustSucceed(t, u.llmkey("setup", "cline"))
	hub := func(args ...string) string {
		cmd := exec.Command(cline, append([]string{"hub"}, args...)...)
		cmd.Env = u.env
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	t.Cleanup(func() { hub("stop") })

	work := t.TempDir()
	u.agent(work, nil, cline, "-m", "gpt-x", "say hi")
	if !fake.saw(func(s seenRequest) bool { return s.Auth == "Bearer "+b && s.Path == "/v1/chat/completions" }) || fake.count(a) != 1 {
		u.errorf("the upstream saw: %+v", fake.requests())
	}
	// The first run starts the hub in the background and goes on
	// without it; the hub comes up a moment later.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(hub("status"), `"running":true`); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("no hub a minute after a cline run: %s", hub("status"))
		}
	}
	if r := u.llmkey("doctor"); strings.Contains(r.stdout, "hub") {
		u.errorf("doctor with the hub a cline run under exec started: %v", r)
	}
	hub("stop")
	hub("start") // outside exec
	if r := u.llmkey("doctor"); r.code != 1 || !strings.Contains(r.stdout, "cline's background hub") || !strings.Contains(r.stdout, "fix: cline hub stop") {
		u.errorf("doctor with a hub started outside exec: %v", r)
	}
	hub("stop")
	u.moveDaemon()
	if r := u.llmkey("doctor"); !strings.Contains(r.stdout, "cline's openai-compatible provider points at another port") {
		u.errorf("doctor after the daemon moved: %v", r)
	}
	mustSucceed(t, u.llmkey("setup", "cline"))
	hub("stop")
	u.agent(work, nil, cline, "-m", "gpt-x", "say hi again")
	mustSucceed(t, u.llmkey("setup", "cline", "--undo"))
	if got := readFile(t, providers); strings.Contains(got, "baseUrl") || !strings.Contains(got, `"lastUsedProvider": "anthropic"`) || !strings.Contains(got, `"model": "gpt-x"`) {
		t.Errorf("undo after cline rewrote its file left:\n%s", got)
	}
}

// doctor on a fresh home with Codex and Gemini CLI installed names both
// as not set up, with the fix, and exits 1, as exec warns for each; once
// they are set up, and opencode with its port-independent file, it exits
// 0, and after the daemon moved it says nothing of opencode. Without the
// daemon it says so (exit 3), and still names what is not set up.
func TestDoctorOnAFreshHome(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")})
	bin := filepath.Join(u.home, "bin")
	for _, tool := range []string{"codex", "gemini"} {
		writeFile(t, filepath.Join(bin, tool), "#!/bin/sh\nexit 0\n", 0o755)
	}
	path := []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	r := u.run(nil, path, "doctor")
	if r.code != 3 || !strings.Contains(r.stdout, "Codex has no llmkey model provider") || !strings.Contains(r.stdout, "Gemini CLI's auth method is unset") {
		u.errorf("doctor on a fresh home, the daemon not started: %v", r)
	}
	mustSucceed(t, u.llmkey("start"))
	r = u.run(nil, path, "doctor")
	for _, want := range []string{"Codex CLI is not set up (" + filepath.Join(u.home, ".codex", "config.toml") + " does not exist): Codex has no llmkey model provider", "fix: llmkey setup codex",
		"Gemini CLI is not set up (" + filepath.Join(u.home, ".gemini", "settings.json") + " does not exist): Gemini CLI's auth method is unset", "fix: llmkey setup gemini"} {
		if !strings.Contains(r.stdout, want) {
			u.errorf("doctor on a fresh home misses %q: %v", want, r)
		}
	}
	if r.code != 1 {
		u.errorf("doctor on a fresh home: exit %d", r.code)
	}
	for _, tool := range []string{"codex", "gemini"} {
		if r := u.run(nil, path, "exec", "--", tool); !strings.Contains(r.stderr, "is not set up (") || !strings.Contains(r.stderr, "hint: llmkey setup "+tool) {
			u.errorf("exec -- %s on a fresh home: %v", tool, r)
		}
	}

	for _, tool := range []string{"codex", "gemini", "opencode"} {
		mustSucceed(t, u.llmkey("setup", tool))
	}
	if !strings.Contains(readFile(t, filepath.Join(u.home, ".config", "opencode", "opencode.json")), "{env:LLMKEY_URL}/gemini/v1beta") {
		t.Error("opencode's file is not port-independent")
	}
	if r := u.run(nil, path, "doctor"); r.code != 0 || !strings.Contains(r.stdout, "no problems found") {
		u.errorf("doctor after setup: %v", r)
	}
	u.moveDaemon()
	if r := u.run(nil, path, "doctor"); !strings.Contains(r.stdout, "Codex's llmkey provider points at another port") || strings.Contains(r.stdout, "opencode") {
		u.errorf("doctor after the daemon moved: %v", r)
	}
}

// doctor names every variable exec clears that the shell holds, as env
// --shell json marks them, with what it does (none with a reason that
// does not hold), and finds an llmkey token that a tool keeps in its own
// file, without showing it.
func TestDoctorNamesWhatExecClearsAndTokensInToolFiles(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")})
	var vars map[string]*string
	if err := json.Unmarshal([]byte(mustSucceed(t, u.llmkey("env", "--shell", "json")).stdout), &vars); err != nil {
		t.Fatal(err)
	}
	var cleared, shell []string
	for n, v := range vars {
		if v == nil {
			cleared = append(cleared, n)
			shell = append(shell, n+"=x")
		}
	}
	r := u.run(nil, shell, "doctor")
	for _, n := range cleared {
		if !strings.Contains(r.stdout, n+" is set in this shell: ") {
			u.errorf("doctor does not name %s: %v", n, r)
		}
	}
	if !slices.Contains(cleared, "OPENAI_ORGANIZATION") || !slices.Contains(cleared, "OPENAI_PROJECT") || !slices.Contains(cleared, "GOOGLE_API_KEY") || r.code != 1 || strings.Contains(r.stdout, "it goes upstream with whichever key serves") {
		u.errorf("doctor with every variable exec clears (%v): %v", cleared, r)
	}

	writeFile(t, filepath.Join(u.home, ".pi", "agent", "models.json"), `{"providers":{"openai":{"apiKey":"`+u.token()+`"}}}`, 0o600)
	r = u.llmkey("doctor")
	if r.code != 1 || !strings.Contains(r.stdout, "pi keeps an llmkey token in "+filepath.Join(u.home, ".pi", "agent", "models.json")+" (line 1)") || strings.Contains(r.stdout, u.token()) {
		u.errorf("doctor with the token in pi's file: %v", r)
	}
}

// The Google clients that read no base URL variable, the Vercel AI SDK's
// and LangChain's, reach the proxy with the line of code docs/agents.md
// gives for each; the AI SDK's, without it, finds no key under exec
// rather than sending the local token to Google's own host.
func TestGoogleClientsWithTheirLineOfCode(t *testing.T) {
	dir := npmDir(t)
	u := newUser(t)
	fake := newFakeProvider(t)
	key := u.canary("AIza")
	u.writeKeyfile(fake.URL, map[string]string{"gemini": key})
	script := filepath.Join(t.TempDir(), "google.mjs")
	writeFile(t, script, `
import { createRequire } from 'node:module';
const require = createRequire(process.env.NODE_PATH + '/');
const { generateText } = require('ai');
const { createGoogleGenerativeAI, google } = require('@ai-sdk/google');
const { ChatGoogleGenerativeAI } = require('@langchain/google-genai');
try {
  await generateText({ model: google('gemini-x'), prompt: 'hi', maxRetries: 0 });
  console.log('UNCHANGED went somewhere');
} catch (e) { console.log('UNCHANGED', e.message); }
const aisdk = createGoogleGenerativeAI({ baseURL: process.env.LLMKEY_URL + '/gemini/v1beta', apiKey: process.env.LLMKEY_TOKEN });
console.log('AISDK', (await generateText({ model: aisdk('gemini-x'), prompt: 'hi' })).text);
const lc = new ChatGoogleGenerativeAI({ model: 'gemini-x', baseUrl: process.env.LLMKEY_URL + '/gemini', maxRetries: 0 });
console.log('LANGCHAIN', (await lc.invoke('hi')).content);
`, 0o600)
	cmd := exec.Command(llmkeyBin, "exec", "--", "node", script)
	cmd.Env = append(append([]string{}, u.env...), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	out, err := cmd.CombinedOutput()
	u.assertNoCanary(string(out))
	for _, want := range []string{"UNCHANGED Google Generative AI API key is missing", "AISDK hello", "LANGCHAIN hello"} {
		if err != nil || !strings.Contains(string(out), want) {
			u.errorf("no %q: %v\n%s", want, err, out)
		}
	}
	if n := fake.count(key); n != 2 {
		u.errorf("the upstream saw %d requests with the real key, want 2: %+v", n, fake.requests())
	}
}
