package cli

import (
	"strings"
	"testing"
)

const codexUser = `# my settings
model = "o3"
model_provider = "openai"
approval_policy = "on-request"

[model_providers.mine]
name = "mine"
base_url = "https://example.com/v1" # keep this
`

// setup edits Codex's config in place: the user's lines kept, their
// model_provider set aside, applying again changes nothing, a new port
// replaces the old, and taking llmkey's part out gives the file back.
func TestCodexConfigEdit(t *testing.T) {
	for _, before := range []string{codexUser, "", "model = \"x\"", "[tui]\nnotifications = true\n"} {
		after, err := applyCodex([]byte(before), "http://127.0.0.1:5565")
		if err != nil {
			t.Fatal(err)
		}
		again, _ := applyCodex(after, "http://127.0.0.1:5565")
		if string(again) != string(after) {
			t.Errorf("applied twice:\n%s\nonce:\n%s", again, after)
		}
		// (undo itself restores the very bytes from its record)
		if got := codexBase(string(after)); strings.TrimSuffix(got, "\n") != strings.TrimSuffix(before, "\n") {
			t.Errorf("taken out again:\n%q\nwas:\n%q", got, before)
		}
		if len(checkCodex(after, "http://127.0.0.1:5565")) != 0 {
			t.Errorf("doctor finds a problem in what setup wrote:\n%s", after)
		}
		if len(checkCodex(after, "http://127.0.0.1:6000")) != 1 {
			t.Errorf("doctor misses a changed port")
		}
		moved, _ := applyCodex(after, "http://127.0.0.1:6000")
		if !strings.Contains(string(moved), `base_url = "http://127.0.0.1:6000/openai"`) || strings.Contains(string(moved), "5565") {
			t.Errorf("a new port:\n%s", moved)
		}
	}
	after, _ := applyCodex([]byte(codexUser), "http://127.0.0.1:5565")
	s := string(after)
	if !strings.HasPrefix(s, codexBegin+"\nmodel_provider = \"llmkey\"\n") || !strings.Contains(s, codexWas+"model_provider = \"openai\"\n") ||
		!strings.Contains(s, `base_url = "https://example.com/v1" # keep this`) || !strings.Contains(s, "supports_websockets = true") {
		t.Errorf("after setup:\n%s", s)
	}
}

// JSON settings are edited in place: the value replaced where it is, or
// the missing members added, every other byte kept.
func TestJSONSet(t *testing.T) {
	tests := []struct{ before, want string }{
		{"", "{\n  \"security\": {\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\"\n    }\n  }\n}\n"},
		{`{"theme": "dark"}`, "{\n  \"security\": {\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\"\n    }\n  },\"theme\": \"dark\"}"},
		{"{\n  \"security\": {\"auth\": {\"selectedType\": \"oauth-personal\"}},\n  \"x\": 1\n}\n", "{\n  \"security\": {\"auth\": {\"selectedType\": \"gemini-api-key\"}},\n  \"x\": 1\n}\n"},
		{"{\"security\": {}}", "{\"security\": {\n    \"auth\": {\n      \"selectedType\": \"gemini-api-key\"\n    }\n  }}"},
	}
	for _, tt := range tests {
		got, err := jsonSet([]byte(tt.before), geminiAuth, `"gemini-api-key"`)
		if err != nil || string(got) != tt.want {
			t.Errorf("jsonSet(%q) = %q %v, want %q", tt.before, got, err, tt.want)
			continue
		}
		if again, _ := jsonSet(got, geminiAuth, `"gemini-api-key"`); string(again) != string(got) {
			t.Errorf("set twice: %q", again)
		}
		if v, ok := jsonGet(got, geminiAuth); !ok || v != `"gemini-api-key"` {
			t.Errorf("get after set: %q %v", v, ok)
		}
	}
	if _, err := jsonSet([]byte("// a comment\n{}"), geminiAuth, `"x"`); err == nil {
		t.Error("a file with comments was edited")
	}
}
