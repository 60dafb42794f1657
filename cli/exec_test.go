// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// The child's environment: every SDK of a provider with keys points at
// the proxy with the local token, a provider without keys keeps its
// variables, the variables that would win over ours or send a foreign
// organization (GOOGLE_GENAI_USE_VERTEXAI, OPENAI_ORG_ID) are removed,
// and the rest of the environment is as it was.
func TestExecEnvironment(t *testing.T) {
	e := &control.Env{ProxyURL: "http://127.0.0.1:5565", Token: "llmk-local-x", Providers: []string{"openai", "gemini", "groq"}}
	environ := []string{"HOME=/home/u", "OPENAI_API_KEY=sk-real", "GOOGLE_API_KEY=AIza-real", "ANTHROPIC_API_KEY=sk-ant-mine",
		"GOOGLE_GENAI_USE_VERTEXAI=true", "GOOGLE_GENERATIVE_AI_API_KEY=AIza-real", "OPENAI_ORG_ID=org-other", "PATH=/bin"}
	set, unset := proxyVars(e, getenvOf(environ))
	env := mergeEnv(environ, set, unset)
	want := []string{
		"HOME=/home/u", "ANTHROPIC_API_KEY=sk-ant-mine", "PATH=/bin",
		"GEMINI_API_KEY=llmk-local-x", "GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:5565/gemini",
		"GROQ_API_KEY=llmk-local-x", "GROQ_BASE_URL=http://127.0.0.1:5565/groq",
		"LLMKEY_TOKEN=llmk-local-x", "LLMKEY_URL=http://127.0.0.1:5565",
		"OPENAI_API_BASE=http://127.0.0.1:5565/openai", "OPENAI_API_KEY=llmk-local-x", "OPENAI_BASE_URL=http://127.0.0.1:5565/openai",
	}
	if !slices.Equal(env, want) {
		t.Errorf("environment:\n%s\nwant:\n%s", strings.Join(env, "\n"), strings.Join(want, "\n"))
	}
	for _, kv := range env {
		if strings.Contains(kv, "sk-real") || strings.Contains(kv, "AIza-real") {
			t.Errorf("a real key reached the child: %s", kv)
		}
	}
}

// getenvOf is os.Getenv over environ.
func getenvOf(environ []string) func(string) string {
	return func(name string) string {
		for _, kv := range environ {
			if n, v, _ := strings.Cut(kv, "="); n == name {
				return v
			}
		}
		return ""
	}
}

// In a shell that took 'llmkey env' (every provider's variables hold the
// local token), a scoped exec leaves no other token than its own: the
// providers outside its selection get the scoped token, which the proxy
// answers 403 not-selected, and keep pointing at the proxy. A provider's
// variables that hold a key of the user's own stay as they were.
func TestScopedExecReplacesEveryOtherToken(t *testing.T) {
	unscoped := &control.Env{ProxyURL: "http://127.0.0.1:5565", Token: "llmk-local-x", Providers: state.BuiltinNames()}
	set, unset := proxyVars(unscoped, getenvOf(nil))
	shell := mergeEnv([]string{"HOME=/home/u"}, set, unset)
	shell = mergeEnv(shell, [][2]string{{"MISTRAL_API_KEY", "mistral-own-key"}, {"MISTRAL_BASE_URL", "https://api.mistral.ai/v1"}}, nil)

	scoped := &control.Env{ProxyURL: "http://127.0.0.1:5566", Token: "llmk-scoped-y", Providers: []string{"openai"}}
	set, unset = proxyVars(scoped, getenvOf(shell))
	env := mergeEnv(shell, set, unset)
	get := getenvOf(env)
	for _, kv := range env {
		if strings.Contains(kv, "llmk-local-") || strings.Contains(kv, ":5565") {
			t.Errorf("the unscoped token or the old proxy reached the command: %s", kv)
		}
	}
	for name, want := range map[string]string{"OPENAI_API_KEY": "llmk-scoped-y", "ANTHROPIC_API_KEY": "llmk-scoped-y",
		"ANTHROPIC_BASE_URL": "http://127.0.0.1:5566/anthropic", "GEMINI_API_KEY": "llmk-scoped-y", "GROQ_API_KEY": "llmk-scoped-y",
		"LLMKEY_TOKEN": "llmk-scoped-y", "MISTRAL_API_KEY": "mistral-own-key", "MISTRAL_BASE_URL": "https://api.mistral.ai/v1"} {
		if got := get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// env prints the same set for sh, fish and json; a value is quoted for
// the shell, and json marks what to remove as null.
func TestEnvOutput(t *testing.T) {
	set := [][2]string{{"OPENAI_API_KEY", "llmk-local-x"}, {"LLMKEY_URL", "http://127.0.0.1:1/it's"}}
	unset := []string{"ANTHROPIC_AUTH_TOKEN"}
	for shell, want := range map[string]string{
		"sh":   "unset ANTHROPIC_AUTH_TOKEN\nexport OPENAI_API_KEY='llmk-local-x'\nexport LLMKEY_URL='http://127.0.0.1:1/it'\\''s'\n",
		"fish": "set -e ANTHROPIC_AUTH_TOKEN;\nset -gx OPENAI_API_KEY 'llmk-local-x';\nset -gx LLMKEY_URL 'http://127.0.0.1:1/it'\\''s';\n",
	} {
		var b bytes.Buffer
		if err := writeEnv(&b, shell, set, unset); err != nil || b.String() != want {
			t.Errorf("%s:\n%s\nwant:\n%s", shell, b.String(), want)
		}
	}
	var b bytes.Buffer
	writeEnv(&b, "json", set, unset)
	var obj map[string]*string
	if err := json.Unmarshal(b.Bytes(), &obj); err != nil {
		t.Fatal(err)
	}
	if v, ok := obj["ANTHROPIC_AUTH_TOKEN"]; !ok || v != nil || *obj["OPENAI_API_KEY"] != "llmk-local-x" {
		t.Errorf("json: %s", b.String())
	}
}

// exec --no-start with no daemon fails with exit 3 and runs nothing (the
// test process is still here); a command that is not there, or not
// runnable, fails with 127 or 126 before any daemon is asked or started.
func TestExecCommandWithoutTheDaemon(t *testing.T) {
	_, p := tempUser(t)
	s, out, errs := captured(t)
	err := ExecCommand(context.Background(), ExecCommandInput{Paths: p, NoStart: true, Command: []string{"sh", "-c", "exit 0"}}, s)
	if ExitCode(err) != ExitNotRunning || !errors.Is(err, control.ErrNotRunning) || err.(hinter).HintText() != "start it: llmkey start" {
		t.Errorf("--no-start, no daemon: %v (exit %d)", err, ExitCode(err))
	}
	if out.Len() != 0 || errs.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out, errs)
	}
	for _, tc := range []struct {
		argv []string
		code int
	}{
		{[]string{"llmkey-test-no-such-command"}, ExitCommandNotFound},
		{[]string{t.TempDir()}, ExitCommandCannotRun},
	} {
		err := ExecCommand(context.Background(), ExecCommandInput{Paths: p, Command: tc.argv}, s)
		if ExitCode(err) != tc.code {
			t.Errorf("%q: %v (exit %d), want exit %d", tc.argv, err, ExitCode(err), tc.code)
		}
	}
	if _, err := os.Stat(p.RuntimeDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a daemon was started for a command that cannot run: %v", err)
	}
}

// env asks the running daemon for the proxy and the token, prints the
// variables, and passes on the daemon's warnings; a daemon of another
// version is said, with how to restart it, and one that serves another
// keyfile is refused.
func TestEnvCommandAgainstADaemon(t *testing.T) {
	_, p := tempUser(t)
	e := control.Env{ProxyURL: "http://127.0.0.1:5565", Token: "llmk-local-test", Providers: []string{"openai"}, Version: Version,
		Keyfile: p.Keyfile, Problems: []string{"codex's config points at another port"}}
	env := func(e control.Env) (string, string, error) {
		q := fakeDaemon(t, p, map[string]any{"GET /v1/env": e})
		s, out, errs := captured(t)
		err := EnvCommand(context.Background(), EnvCommandInput{Paths: q, NoStart: true, Shell: "sh"}, s)
		return out.String(), errs.String(), err
	}
	out, errs, err := env(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export OPENAI_API_KEY='llmk-local-test'\n", "export OPENAI_BASE_URL='http://127.0.0.1:5565/openai'\n", "export LLMKEY_URL='http://127.0.0.1:5565'\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if errs != "llmkey: warning: codex's config points at another port\n" {
		t.Errorf("stderr: %q", errs)
	}

	e.Version, e.Problems = "0.0.1-older", nil
	if _, errs, err = env(e); err != nil || errs != "llmkey: warning: the daemon runs version 0.0.1-older, this is "+Version+"\nhint: restart it to use this version: llmkey restart\n" {
		t.Errorf("another version: %v, stderr %q", err, errs)
	}

	e.Version, e.Keyfile = Version, "/elsewhere/keys.toml"
	if out, _, err = env(e); err == nil || !strings.Contains(err.Error(), "serves the keyfile /elsewhere/keys.toml") || out != "" {
		t.Errorf("another keyfile: %v, stdout %q", err, out)
	}
}
