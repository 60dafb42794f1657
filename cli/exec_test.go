package cli

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/daemon/control"
)

// The child's environment: every SDK of a provider with keys points at
// the proxy with the local token, a provider without keys keeps its
// variables, the variables that would win over ours or send a foreign
// organization (GOOGLE_GENAI_USE_VERTEXAI, OPENAI_ORG_ID) are removed,
// and the rest of the environment is as it was.
func TestExecEnvironment(t *testing.T) {
	e := &control.Env{ProxyURL: "http://127.0.0.1:5565", Token: "llmk-local-x", Providers: []string{"openai", "gemini", "groq"}}
	set, unset := proxyVars(e)
	env := mergeEnv([]string{"HOME=/home/u", "OPENAI_API_KEY=sk-real", "GOOGLE_API_KEY=AIza-real", "ANTHROPIC_API_KEY=sk-ant-mine",
		"GOOGLE_GENAI_USE_VERTEXAI=true", "GOOGLE_GENERATIVE_AI_API_KEY=AIza-real", "OPENAI_ORG_ID=org-other", "PATH=/bin"}, set, unset)
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
