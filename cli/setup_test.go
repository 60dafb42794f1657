// SPDX-License-Identifier: MIT

package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
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

// Ordinary Codex configs of every shape come out as TOML that Codex
// reads, meaning the user's settings plus llmkey's provider, chosen at the
// top level: after a last table that is a profile or an MCP server, with
// dotted keys, without a final newline, with a quoted key, with a
// multi-line array or string that holds what looks like a table or a key.
func TestCodexConfigShapes(t *testing.T) {
	const proxy = "http://127.0.0.1:5565"
	for name, before := range map[string]string{
		"last table a profile":     "model = \"o3\"\n\n[profiles.fast]\nmodel = \"gpt-5-mini\"\nmodel_provider = \"openai\"\n",
		"last table an MCP server": "model_provider = \"openai\"\n[mcp_servers.docs]\ncommand = \"npx\"\nargs = [\"-y\", \"docs\"]\n",
		"dotted keys":              "model = \"o3\"\ntui.notifications = true\nmodel_providers.mine.name = \"mine\"\nmodel_providers.mine.base_url = \"http://x\"\n",
		"no final newline":         "model = \"o3\"\n[tui]\nnotifications = true",
		"quoted key":               "\"model_provider\" = \"openai\" # mine\n",
		"multi-line array":         "notify = [\n  [\"a\"],\n]\nmodel_provider = \"openai\"\n",
		"multi-line string":        "instructions = \"\"\"\n[not a table]\nmodel_provider = \"x\"\n\"\"\"\nmodel_provider = \"openai\"\n",
		"CRLF":                     "model = \"o3\"\r\nmodel_provider = \"openai\"\r\n[tui]\r\nnotifications = true\r\n",
		"a table of providers":     "[model_providers]\nmine = { name = \"m\", base_url = \"http://x\" }\n",
	} {
		after, err := applyCodex([]byte(before), proxy)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var doc struct {
			ModelProvider  string `toml:"model_provider"`
			Instructions   string
			ModelProviders map[string]struct {
				BaseURL string `toml:"base_url"`
				EnvKey  string `toml:"env_key"`
			} `toml:"model_providers"`
		}
		if _, err := toml.Decode(string(after), &doc); err != nil || doc.ModelProvider != "llmkey" ||
			doc.ModelProviders["llmkey"].BaseURL != proxy+"/openai" || doc.ModelProviders["llmkey"].EnvKey != "OPENAI_API_KEY" {
			t.Errorf("%s: %+v %v:\n%s", name, doc, err, after)
		}
		if strings.HasPrefix(name, "multi-line string") && !strings.Contains(doc.Instructions, "model_provider = \"x\"") {
			t.Errorf("%s: the string changed: %q", name, doc.Instructions)
		}
		if again, _ := applyCodex(after, proxy); string(again) != string(after) {
			t.Errorf("%s: applied twice:\n%s", name, again)
		}
		rec, err := newSetupRecord(nil, "config.toml", []byte(before), after, true, tool{})
		if back, ok := rec.restore(after); err != nil || !ok || string(back) != before {
			t.Errorf("%s: undo gives %q %v, want %q", name, back, err, before)
		}
	}
}

// A Codex config that cannot take llmkey's provider so that Codex reads
// it as meant is refused with what to do, and nothing is written.
func TestCodexConfigsRefused(t *testing.T) {
	for _, tt := range []struct{ before, says string }{
		{"model_providers = { mine = { name = \"mine\", base_url = \"http://x\" } }\n", "line 1 sets model_providers whole (an inline table)"},
		{"[model_providers.llmkey]\nname = \"mine\"\nbase_url = \"http://x\"\n", "a model provider named llmkey that llmkey setup did not write"},
		{"profile = \"work\"\n[profiles.work]\nmodel_provider = \"openai\"\n", `(profile = "work") sets model_provider = "openai"`},
		{"model = \"o3\n", "not valid TOML"},
	} {
		out, err := applyCodex([]byte(tt.before), "http://127.0.0.1:5565")
		var h hinter
		if err == nil || out != nil || !strings.Contains(err.Error(), tt.says) || !errors.As(err, &h) || h.HintText() == "" {
			t.Errorf("applyCodex(%q) = %q, %v; want a refusal that says %q, with a hint", tt.before, out, err, tt.says)
		}
	}
}

// Setup's record for undo is the edit alone: it puts the file back byte
// for byte, keeps no other line of the file, refuses a file changed since,
// and refuses to be made when the value setup replaces looks like a key.
func TestSetupRecordKeepsOnlyTheEdit(t *testing.T) {
	key := "sk-proj-" + strings.Repeat("Ab1", 12)
	at := func(url string) setupEnv { return setupEnv{ProxyURL: url, Providers: []string{"openai"}} }
	before := []byte(`{"providers":{"openai":{"apiKey":"` + key + `","baseUrl":"https://example.com/v1"}}}`)
	after, err := applyPi(before, at("http://127.0.0.1:5565"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := newSetupRecord(nil, "models.json", before, after, true, tool{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rec)
	// Only what the new URL replaced: both begin with "http".
	if strings.Contains(string(b), key) || strings.Contains(string(b), "apiKey") || len(rec.Edits) != 1 || rec.Edits[0].Removed != "s://example.com/v1" {
		t.Errorf("the record holds more than the edit: %s", b)
	}
	if back, ok := rec.restore(after); !ok || string(back) != string(before) {
		t.Errorf("undo gives %q", back)
	}
	if _, ok := rec.restore(append(after, ' ')); ok {
		t.Error("undo of a file changed since")
	}
	// A second setup (another port) still undoes to before the first.
	moved, _ := applyPi(after, at("http://127.0.0.1:6000"))
	rec2, _ := newSetupRecord(&rec, "models.json", after, moved, true, tool{})
	if back, ok := rec2.restore(moved); !ok || string(back) != string(before) {
		t.Errorf("undo after two setups gives %q", back)
	}

	withKey := []byte(`{"providers":{"openai":{"baseUrl":"https://proxy.example.com/?key=AIza` + strings.Repeat("x1", 16) + `"}}}`)
	after, _ = applyPi(withKey, at("http://127.0.0.1:5565"))
	if _, err := newSetupRecord(nil, "models.json", withKey, after, true, tool{}); err == nil || !strings.Contains(err.Error(), "looks like an API key") || strings.Contains(err.Error(), "AIza") {
		t.Errorf("a replaced value that looks like a key: %v", err)
	}
}

// The edits found are the smallest, in bytes, whatever the lines around.
func TestDiffEdits(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"", ""}, {"", "x\n"}, {"x\n", ""}, {"a\nb\nc\n", "a\nB\nc\n"}, {"a\nb", "top\na\nb\n\ntable\n"},
		{"a\nb\nc\nd\n", "# was: a\nb\nX\nd\ne\n"}, {strings.Repeat("l\n", 1000), "h\n" + strings.Repeat("l\n", 1000) + "t\n"},
	} {
		edits := diffEdits([]byte(tt.a), []byte(tt.b))
		rec := setupRecord{Written: sha256Hex([]byte(tt.b)), Edits: edits}
		if back, ok := rec.restore([]byte(tt.b)); !ok || string(back) != tt.a {
			t.Errorf("diffEdits(%q, %q) = %+v: undo gives %q", tt.a, tt.b, edits, back)
		}
	}
	if e := diffEdits([]byte("model = 1\n"), []byte("# was: model = 1\n")); len(e) != 1 || e[0].Removed != "" || e[0].Added != len("# was: ") {
		t.Errorf("a prefix put on a line: %+v", e)
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
	if _, err := jsonSet([]byte("// a comment\n{}"), geminiAuth, `"x"`); err == nil || !strings.Contains(err.Error(), "not a JSON object at the top level") {
		t.Errorf("a file with comments: %v", err)
	}
	if _, err := jsonSet([]byte(`{"security": {"auth": 3}}`), geminiAuth, `"x"`); err == nil || !strings.Contains(err.Error(), "not a JSON object at security.auth") {
		t.Errorf("a value where an object should be: %v", err)
	}
}
