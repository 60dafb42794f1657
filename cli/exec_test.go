package cli

import (
	"bytes"
	"encoding/json"
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
		"GOOGLE_GENAI_USE_VERTEXAI=true", "OPENAI_ORG_ID=org-other", "PATH=/bin"}
	set, unset := proxyVars(e, getenvOf(environ))
	env := mergeEnv(environ, set, unset)
	want := []string{
		"HOME=/home/u", "ANTHROPIC_API_KEY=sk-ant-mine", "PATH=/bin",
		"GEMINI_API_KEY=llmk-local-x", "GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:5565/gemini", "GOOGLE_GENERATIVE_AI_API_KEY=llmk-local-x",
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
