// SPDX-License-Identifier: MIT

package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const okKey = "[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"sk-aaaaaaaaaaaaaaaaaaaaaaaa\"\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data       string
		line             int
		field, msg, hint string
	}{
		{"syntax", "[[key]]\nprovider = \"openai\nname = \"a\"\n", 2, "key.provider", "newlines", "fix the TOML syntax"},
		{"type", okKey + "rpm = \"sixty\"\n", 5, "key.rpm", "incompatible types", "numbers bare"},
		{"unknown field", okKey + "secert = \"x\"\n", 5, "key.secert", "unknown field", `did you mean "secret"`},
		{"wrong case", okKey + "RPM = 5\n", 5, "key.RPM", "unknown field", `did you mean "rpm"`},
		{"wrong case provider field", "[provider.openai]\nBase_URL = \"https://x\"\n", 2, "provider.openai.Base_URL", "unknown field", `did you mean "base_url"`},
		{"unknown table", okKey + "\n[deamon]\nlisten = \"127.0.0.1:1\"\n", 6, "deamon", "unknown table", "[daemon]"},
		{"unknown provider", "# c\n\n[[key]]\nprovider = \"opneai\"\nname = \"a\"\nsecret = \"s\"\n", 4, "key[1].provider", `unknown provider "opneai"`, `did you mean "openai"`},
		{"duplicate", okKey + "\n" + okKey, 8, "key[2].name", "duplicate key openai/a (also key[1] on line 1)", "its own name"},
		{"empty secret", "[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"\"\n", 4, "key[1].secret", "missing or empty secret", "llmkey add openai a"},
		{"missing secret", "[[key]]\nprovider = \"openai\"\nname = \"a\"\n", 1, "key[1].secret", "missing or empty secret", ""},
		{"space in secret", "[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"sk- x\"\n", 4, "key[1].secret", "spaces", ""},
		{"bad name", "[[key]]\nprovider = \"openai\"\nname = \"a/b\"\nsecret = \"s\"\n", 3, "key[1].name", "invalid name", ""},
		{"negative", okKey + "max_concurrent = -1\n", 5, "key[1].max_concurrent", "must not be negative", "use 0"},
		{"huge rpm", okKey + "rpm = 9223372036854775807\n", 5, "key[1].rpm", "more than llmkey takes (at most 100000)", "use 0"},
		{"rpm past its window", okKey + "rpm = 20000000\n", 5, "key[1].rpm", "at most 100000", ""},
		{"huge weight", okKey + "weight = 9223372036854775807\n", 5, "key[1].weight", "at most 1000000", ""},
		{"huge max_in_flight", "[daemon]\nmax_in_flight = 9223372036854775807\n", 2, "daemon.max_in_flight", "at most 1000000", "default"},
		{"huge duration", "[daemon]\nprobe_interval = \"2562047h\"\n", 2, "daemon.probe_interval", "longer than llmkey takes", ""},
		{"huge provider timeout", "[provider.openai]\nstream_idle_timeout = \"9000h\"\n", 2, "provider.openai.stream_idle_timeout", "longer than llmkey takes", ""},
		{"nan price", "[pricing.\"gpt-4o\"]\ninput = nan\n", 2, "pricing.gpt-4o.input", "a number from 0 to", ""},
		{"inf price", "[pricing.\"gpt-4o\"]\noutput = inf\n", 2, "pricing.gpt-4o.output", "a number from 0 to", ""},
		{"bad glob", okKey + "models = [\"gpt-[\"]\n", 5, "key[1].models", "bad model pattern", ""},
		{"listen not loopback", "[daemon]\nlisten = \"0.0.0.0:8080\"\n", 2, "daemon.listen", "not a loopback address", "127.0.0.1"},
		{"bad strategy", "[daemon]\n\nstrategy = \"random\"\n", 3, "daemon.strategy", `unknown strategy "random"`, "round-robin"},
		{"new provider without kind", "[provider.local]\nbase_url = \"http://127.0.0.1:1/v1\"\n", 1, "provider.local.kind", "missing kind", "kind ="},
		{"new provider without url", "[provider.local]\nkind = \"openai\"\n", 1, "provider.local.base_url", "missing base_url", ""},
		{"builtin kind change", "[provider.openai]\nkind = \"gemini\"\n", 2, "provider.openai.kind", "built-in provider", ""},
		{"bad kind", "[provider.x]\nkind = \"cohere\"\nbase_url = \"https://x\"\n", 2, "provider.x.kind", `unknown kind "cohere"`, ""},
		{"bad base_url", "[provider.openai]\nbase_url = \"api.openai.com\"\n", 2, "provider.openai.base_url", "not an absolute", ""},
		{"negative price", "[pricing.\"gpt-4o\"]\ninput = 2.5\noutput = -1\n", 3, "pricing.gpt-4o.output", "must not be negative", "per million"},
		{"unknown price field", "[pricing.\"gpt-4o\"]\ninptu = 2.5\n", 2, "pricing.gpt-4o.inptu", "unknown field", `did you mean "input"`},
		{"fallback of another kind", "[provider.openai]\nfallback = [\"anthropic\"]\n", 2, "provider.openai.fallback", "same wire format", "name a provider of kind openai"},
		{"unknown fallback", "[provider.openai]\nfallback = [\"opnrouter\"]\n", 2, "provider.openai.fallback", `unknown provider "opnrouter"`, `did you mean "openrouter"`},
		{"own fallback", "[provider.openai]\nfallback = [\"openai\"]\n", 2, "provider.openai.fallback", "its own fallback", "another provider"},
		{"models without fallback", "[provider.openai]\nfallback_models = { \"a\" = \"b\" }\n", 2, "provider.openai.fallback_models", "without fallback", "fallback = ["},
		{"demote of openai", "[provider.openai]\ndemote_to_stream = true\n", 2, "provider.openai.demote_to_stream", "only an anthropic-kind", "remove"},
		{"pace out of range", "[daemon]\npace_below = 1.5\n", 2, "daemon.pace_below", "not a share", "from 0"},
		{"bad group", okKey + "group = \"a b\"\n", 5, "key[1].group", "invalid group", "letters"},
		{"unused group table", "[group.acme]\nrpm = 5\n\n" + okKey, 1, "group.acme", `no key has group = "acme"`, "add group"},
		{"negative group limit", "[group.acme]\nrpm = -5\n\n" + okKey + "group = \"acme\"\n", 2, "group.acme.rpm", "must not be negative", "no limit"},
		{"unknown group field", "[group.acme]\nrmp = 5\n", 2, "group.acme.rmp", "unknown field", `did you mean "rpm"`},
		{"key of undefined provider", "[provider.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1\"\n\n[[key]]\nprovider = \"locl\"\nname = \"a\"\nsecret = \"s\"\n", 6, "key[1].provider", "unknown provider", `did you mean "local"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("k.toml", []byte(tt.data))
			var ke *KeyfileError
			if !errors.As(err, &ke) {
				t.Fatalf("want *KeyfileError, got %T %v", err, err)
			}
			if ke.Line != tt.line {
				t.Errorf("line = %d, want %d (%v)", ke.Line, tt.line, err)
			}
			if ke.Field != tt.field {
				t.Errorf("field = %q, want %q", ke.Field, tt.field)
			}
			if !strings.Contains(ke.Msg, tt.msg) {
				t.Errorf("msg = %q, want it to contain %q", ke.Msg, tt.msg)
			}
			if ke.Hint == "" || !strings.Contains(ke.Hint, tt.hint) {
				t.Errorf("hint = %q, want non-empty containing %q", ke.Hint, tt.hint)
			}
			if !strings.Contains(err.Error(), "k.toml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	data := `# comment
[daemon]
listen = "localhost:0"
strategy = "fill-first"
allowed_origins = ["https://example.com"]

[provider.openai]
base_url = "http://127.0.0.1:9999/v1/"

[provider.local]
kind = "anthropic"
base_url = "http://127.0.0.1:8000"

[[key]]
provider = "openai"
name = "work"
secret = "sk-1"
rpm = 60
tpm = 1000
max_concurrent = 4
weight = 2
models = ["gpt-4o*", "o3"]

[[key]]
provider = "local"
name = "x"
secret = 'literal'

[pricing."gpt-4o-mini"]
input = 0.15
output = 0.6
cache_read = 0.075
`
	cfg, err := Parse("k.toml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Keys) != 2 || cfg.KeyLine(0) != 14 || cfg.KeyLine(1) != 24 {
		t.Fatalf("keys %+v lines %v", cfg.Keys, cfg.keyLines)
	}
	k := cfg.Keys[0]
	if k.RPM != 60 || k.TPM != 1000 || k.MaxConcurrent != 4 || k.Weight != 2 || len(k.Models) != 2 {
		t.Errorf("limits not decoded: %+v", k)
	}
	if p, _ := cfg.Provider("openai"); p.BaseURL != "http://127.0.0.1:9999/v1" || p.Kind != KindOpenAI {
		t.Errorf("openai override: %+v", p)
	}
	if p, ok := cfg.Provider("local"); !ok || p.Kind != KindAnthropic {
		t.Errorf("local provider: %+v", p)
	}
	if p, _ := cfg.Provider("gemini"); p.BaseURL != "https://generativelanguage.googleapis.com" || p.Kind != KindGemini {
		t.Errorf("gemini built-in: %+v", p)
	}
	if _, ok := cfg.Provider("nope"); ok {
		t.Error("unknown provider resolved")
	}
	if p := cfg.Pricing["gpt-4o-mini"]; p.Input == nil || *p.Input != 0.15 || *p.Output != 0.6 || *p.CacheRead != 0.075 || p.CacheWrite != nil {
		t.Errorf("pricing: %+v", p)
	}
	if !cfg.Daemon.AddStreamUsage() {
		t.Error("stream_usage should default to on")
	}
}

func TestLoadPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.toml")
	if err := os.WriteFile(path, []byte(okKey), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o640)
	_, err := Load(path)
	var pe *PathError
	if !errors.As(err, &pe) || !strings.Contains(pe.Hint, "chmod 600 "+path) {
		t.Fatalf("group-readable keyfile: got %v", err)
	}
	os.Chmod(path, 0o600)
	if _, err := Load(path); err != nil {
		t.Fatalf("0600 keyfile refused: %v", err)
	}
	if os.Getuid() == 0 { // only root can give a file away
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if !errors.As(err, &pe) || !strings.Contains(pe.Problem, "owned by uid 65534") {
			t.Fatalf("foreign keyfile: got %v", err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing keyfile: got %v", err)
	}
}

func TestMask(t *testing.T) {
	tests := map[string]string{
		"sk-proj-abcdefghijklmnopqrstuvwxyz1234":  "sk-proj-…1234",
		"sk-ant-api03-abcdefghijklmnopqrstuvwxyz": "sk-ant-api03-…wxyz",
		"AIzaSyabcdefghijklmnopqrstuvwxyz":        "AIza…wxyz",
		"sk-short":                                "sk-…",
		"plainsecretvalue12345":                   "…2345",
		"tiny":                                    "…",
		"gsk_abcdefghijklmnopqrstu":               "gsk_…rstu",
	}
	for in, want := range tests {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
	if Fingerprint("a") == Fingerprint("b") || len(Fingerprint("a")) != 12 {
		t.Error("fingerprint not distinct or not 12 hex digits")
	}
}

func TestResolvePaths(t *testing.T) {
	env := func(m map[string]string) Getenv { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		env  map[string]string
		flag string
		want Paths
	}{
		// Without XDG_RUNTIME_DIR, never a name in a shared temp dir that
		// another user could create first.
		{"defaults", map[string]string{"HOME": "/h"}, "", Paths{"/h/.config/llmkey/keys.toml", "/h/.local/state/llmkey", "/h/.cache/llmkey/run"}},
		{"xdg", map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": "/c", "XDG_STATE_HOME": "/s", "XDG_RUNTIME_DIR": "/r", "TMPDIR": "/t"}, "",
			Paths{"/c/llmkey/keys.toml", "/s/llmkey", "/r/llmkey"}},
		{"tmpdir", map[string]string{"HOME": "/h", "TMPDIR": "/t"}, "", Paths{"/h/.config/llmkey/keys.toml", "/h/.local/state/llmkey", "/h/.cache/llmkey/run"}},
		{"cache home", map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/ch", "TMPDIR": "/t"}, "", Paths{"/h/.config/llmkey/keys.toml", "/h/.local/state/llmkey", "/ch/llmkey/run"}},
		{"llmkey overrides", map[string]string{"XDG_CONFIG_HOME": "/c", "LLMKEY_KEYFILE": "/k.toml", "LLMKEY_STATE_DIR": "/st", "LLMKEY_RUNTIME_DIR": "/rt"}, "",
			Paths{"/k.toml", "/st", "/rt"}},
		{"flag wins", map[string]string{"LLMKEY_KEYFILE": "/k.toml", "LLMKEY_STATE_DIR": "/st", "LLMKEY_RUNTIME_DIR": "/rt"}, "/f.toml", Paths{"/f.toml", "/st", "/rt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolvePaths(env(tt.env), tt.flag)
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := ResolvePaths(env(map[string]string{}), ""); err == nil || !strings.Contains(err.Error(), "HOME") {
		t.Errorf("no HOME: got %v", err)
	}
}
