// SPDX-License-Identifier: MIT

package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// stateHolds reports whether any file under the state dir holds s, as it
// is or base64-encoded in a JSON string.
func (u *user) stateHolds(s string) bool {
	found := false
	filepath.Walk(u.stateDir(), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		found = found || strings.Contains(string(b), s)
		var doc any
		if json.Unmarshal(b, &doc) == nil {
			found = found || jsonHolds(doc, s)
		}
		return nil
	})
	return found
}

func jsonHolds(v any, s string) bool {
	switch v := v.(type) {
	case string:
		dec, err := base64.StdEncoding.DecodeString(v)
		return err == nil && strings.Contains(string(dec), s)
	case map[string]any:
		for _, x := range v {
			if jsonHolds(x, s) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if jsonHolds(x, s) {
				return true
			}
		}
	}
	return false
}

// A tool's config that is a symlink (dotfile managers make them) is
// edited through the link: the link stays, its target gets the change,
// and undo puts the target's bytes back, the link still in place.
func TestSetupEditsAToolFileThroughItsSymlink(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	dotfiles := filepath.Join(u.home, "dotfiles")
	for _, tt := range []struct{ tool, link, own string }{
		{"codex", ".codex/config.toml", "model = \"o3\"\nmodel_provider = \"openai\"\n"},
		{"gemini", ".gemini/settings.json", "{\n  \"theme\": \"GitHub\"\n}\n"},
	} {
		target := filepath.Join(dotfiles, tt.tool)
		writeFile(t, target, tt.own, 0o644)
		link := filepath.Join(u.home, tt.link)
		os.MkdirAll(filepath.Dir(link), 0o700)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, u.llmkey("setup", tt.tool))
		fi, err := os.Lstat(link)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 || readFile(t, target) == tt.own {
			t.Errorf("setup %s: the link is %v (%v), its target:\n%s", tt.tool, fi.Mode(), err, readFile(t, target))
		}
		if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o644 {
			t.Errorf("setup %s changed the target's mode to %v", tt.tool, fi.Mode())
		}
		mustSucceed(t, u.llmkey("setup", tt.tool, "--undo"))
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 || readFile(t, target) != tt.own {
			t.Errorf("undo %s: the link is %v (%v), its target:\n%q", tt.tool, fi.Mode(), err, readFile(t, target))
		}
	}
}

// No API key in a tool's file reaches llmkey's state dir: setup's record
// for undo holds its edit, not the file; an older record that held the
// whole file is rewritten, or removed by undo. A value that setup would
// replace and that looks like a key is refused, nothing written.
func TestSetupKeepsNoKeyOfTheToolsFile(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	openai, mcp := u.canary("sk-proj-"), u.canary("ghp_")
	opencode := filepath.Join(u.home, ".config", "opencode", "opencode.json")
	ownOpencode := `{"provider":{"openai":{"options":{"apiKey":"` + openai + `"}},"google":{"options":{"baseURL":"https://example.com/v1beta"}}}}` + "\n"
	writeFile(t, opencode, ownOpencode, 0o600)
	codex := filepath.Join(u.home, ".codex", "config.toml")
	ownCodex := "model_provider = \"openai\"\n\n[mcp_servers.github]\ncommand = \"gh-mcp\"\nenv = { GITHUB_TOKEN = \"" + mcp + "\" }\n"
	writeFile(t, codex, ownCodex, 0o600)

	mustSucceed(t, u.llmkey("setup", "opencode"))
	mustSucceed(t, u.llmkey("setup", "codex"))
	for _, c := range []string{openai, mcp} {
		if u.stateHolds(c) {
			t.Errorf("the state dir holds a key of a tool's file (%s...)", c[:4])
		}
	}
	mustSucceed(t, u.llmkey("setup", "opencode", "--undo"))
	mustSucceed(t, u.llmkey("setup", "codex", "--undo"))
	if readFile(t, opencode) != ownOpencode || readFile(t, codex) != ownCodex {
		t.Errorf("undo left:\n%s\n%s", readFile(t, opencode), readFile(t, codex))
	}

	// A record as an older llmkey wrote it: the whole files, base64.
	mustSucceed(t, u.llmkey("setup", "codex"))
	written := readFile(t, codex)
	old, _ := json.Marshal(map[string]any{"path": codex, "existed": true, "before": []byte(ownCodex), "after": []byte(written)})
	record := filepath.Join(u.stateDir(), "setup", "codex.json")
	writeFile(t, record, string(old), 0o600)
	if r := mustSucceed(t, u.llmkey("setup", "codex")); readFile(t, codex) != written || u.stateHolds(mcp) {
		t.Errorf("setup over an older record: %v", r)
	}
	writeFile(t, record, string(old), 0o600)
	mustSucceed(t, u.llmkey("setup", "codex", "--undo"))
	if readFile(t, codex) != ownCodex || u.stateHolds(mcp) {
		t.Errorf("undo from an older record left:\n%s", readFile(t, codex))
	}

	withKey := `{"provider":{"google":{"options":{"baseURL":"https://proxy.example.com/?key=` + u.canary("AIza") + `"}}}}` + "\n"
	writeFile(t, opencode, withKey, 0o600)
	r := u.llmkey("setup", "opencode")
	if r.code != 1 || !strings.Contains(r.stderr, "looks like an API key") || !strings.Contains(r.stderr, "hint:") || readFile(t, opencode) != withKey {
		t.Errorf("setup replacing a value that looks like a key: %v", r)
	}
}

// Codex configs of ordinary shapes get llmkey's provider so that Codex
// reads it; those that cannot take it as meant are refused with what to
// do (exit 1), and left as they were.
func TestSetupCodexConfigShapes(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	cfg := filepath.Join(u.home, ".codex", "config.toml")
	for _, own := range []string{
		"model = \"o3\"\n\n[profiles.fast]\nmodel_provider = \"openai\"\n",
		"\"model_provider\" = \"openai\"\n[mcp_servers.docs]\ncommand = \"npx\"",
		"notify = [\n  [\"a\"],\n]\nmodel_provider = \"openai\"\n",
	} {
		writeFile(t, cfg, own, 0o600)
		mustSucceed(t, u.llmkey("setup", "codex"))
		var doc struct {
			ModelProvider  string                    `toml:"model_provider"`
			ModelProviders map[string]map[string]any `toml:"model_providers"`
		}
		written := readFile(t, cfg)
		if _, err := toml.Decode(written, &doc); err != nil || doc.ModelProvider != "llmkey" || !strings.HasSuffix(fmt.Sprint(doc.ModelProviders["llmkey"]["base_url"]), "/openai") {
			t.Errorf("setup of %q: %+v %v:\n%s", own, doc, err, written)
		}
		mustSucceed(t, u.llmkey("setup", "codex", "--undo"))
		if got := readFile(t, cfg); got != own {
			t.Errorf("undo left %q, want %q", got, own)
		}
	}
	for _, tt := range []struct{ own, says string }{
		{"model_providers = { mine = { name = \"mine\", base_url = \"http://x\" } }\n", "sets model_providers whole"},
		{"[model_providers.llmkey]\nname = \"mine\"\n", "that llmkey setup did not write"},
		{"profile = \"work\"\n[profiles.work]\nmodel_provider = \"openai\"\n", "which wins over llmkey's"},
		{"model = \"o3\n", "not valid TOML"},
	} {
		writeFile(t, cfg, tt.own, 0o600)
		r := u.llmkey("setup", "codex")
		if r.code != 1 || !strings.Contains(r.stderr, "llmkey: "+cfg+": ") || !strings.Contains(r.stderr, tt.says) || !strings.Contains(r.stderr, "hint:") || readFile(t, cfg) != tt.own {
			t.Errorf("setup of %q: %v", tt.own, r)
		}
	}
}

// A JSON settings file of the wrong shape is refused naming where in it
// the object was expected; successes and "nothing to do" are said
// without the error prefix.
func TestSetupMessages(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	settings := filepath.Join(u.home, ".gemini", "settings.json")
	for _, tt := range []struct{ own, says string }{
		{"[1, 2]\n", "settings.json: not a JSON object at the top level"},
		{"{\"security\": {\"auth\": 3}}\n", "settings.json: not a JSON object at security.auth"},
	} {
		writeFile(t, settings, tt.own, 0o600)
		if r := u.llmkey("setup", "gemini"); r.code != 1 || !strings.Contains(r.stderr, tt.says) || !strings.Contains(r.stderr, "hint:") {
			t.Errorf("setup gemini with %q: %v", tt.own, r)
		}
	}
	for _, args := range [][]string{{"setup", "claude"}, {"setup", "codex", "--undo"}, {"setup", "codex"}, {"setup", "codex"}} {
		if r := mustSucceed(t, u.llmkey(args...)); strings.Contains(r.stderr, "llmkey:") || r.stderr == "" {
			t.Errorf("llmkey %v: %v", args, r)
		}
	}
}
