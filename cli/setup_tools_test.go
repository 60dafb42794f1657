// SPDX-License-Identifier: MIT

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/state"
)

var (
	here  = setupEnv{ProxyURL: "http://127.0.0.1:5565", Providers: []string{"anthropic", "gemini", "openai"}}
	moved = setupEnv{ProxyURL: "http://127.0.0.1:6000", Providers: here.Providers}
)

// Each tool's part, written into files of ordinary shapes: applied again
// it changes nothing, doctor finds nothing in it, finds that a tool with
// no file is not set up, and after the daemon moved finds the ports only
// in the files that hold one (those that name LLMKEY_URL hold none).
func TestToolSetups(t *testing.T) {
	for _, tt := range []struct {
		tool        string
		holdsPort   bool
		files       []string
		mustContain []string
	}{
		{"opencode", false, []string{"", opencodeSeed, `{"provider":{"google":{"options":{"baseURL":"http://127.0.0.1:5565/gemini/v1beta"}}}}`},
			[]string{googleBaseURLVar, googleAPIKeyVar}},
		{"kilo", false, []string{kiloSeed, "{\n  \"$schema\": \"https://app.kilo.ai/config.json\",\n  \"model\": \"anthropic/claude\"\n}"}, []string{googleBaseURLVar}},
		{"qwen", false, []string{"", "{\n  \"$version\": 4,\n  \"security\": {\"auth\": {\"selectedType\": \"qwen-oauth\"}}\n}\n"}, []string{`"selectedType": "openai"`}},
		{"pi", true, []string{"", `{"providers":{"ollama":{"baseUrl":"http://localhost:11434/v1"}}}`}, []string{`"baseUrl": "http://127.0.0.1:5565/anthropic"`, `"baseUrl": "http://127.0.0.1:5565/gemini/v1beta"`}},
		{"cline", true, []string{clineSeed, `{"version":1,"lastUsedProvider":"anthropic","providers":{"openai-compatible":{"settings":{"provider":"openai-compatible","model":"m"},"updatedAt":"2026-01-01T00:00:00.000Z"}}}`},
			[]string{`"baseUrl": "http://127.0.0.1:5565/openai"`}},
		{"continue", false, []string{"", "name: x\nversion: 1.0.0\nschema: v1\nmodels:\n  - name: m\n    provider: ollama\n    model: llama\n"},
			[]string{"apiBase: ${{ secrets.LLMKEY_URL }}/openai/", "apiKey: ${{ secrets.LLMKEY_TOKEN }}"}},
	} {
		tl, _ := findTool(tt.tool)
		if len(tl.check(nil, here)) == 0 {
			t.Errorf("%s: no file, no finding", tt.tool)
		}
		for _, before := range tt.files {
			after, err := tl.apply([]byte(before), here)
			if err != nil {
				t.Errorf("%s on %q: %v", tt.tool, before, err)
				continue
			}
			if again, _ := tl.apply(after, here); string(again) != string(after) {
				t.Errorf("%s applied twice:\n%s\nonce:\n%s", tt.tool, again, after)
			}
			for _, want := range tt.mustContain {
				if !strings.Contains(string(after), want) {
					t.Errorf("%s on %q wrote no %s:\n%s", tt.tool, before, want, after)
				}
			}
			if f := tl.check(after, here); len(f) != 0 {
				t.Errorf("%s: doctor finds %v in what setup wrote:\n%s", tt.tool, f, after)
			}
			if f := tl.check(after, moved); (len(f) != 0) != tt.holdsPort || tt.holdsPort && !strings.Contains(f[0].problem, "another port") {
				t.Errorf("%s after the daemon moved: %v", tt.tool, f)
			}
		}
	}
}

// pi and cn get llmkey's base URLs for the providers llmkey has keys for
// only (one pi reaches with its own login keeps going there), all of them
// while it has none; opencode and Kilo are not set up only when there is
// a Gemini key for their Google provider.
func TestSetupNamesTheProvidersWithKeys(t *testing.T) {
	openaiOnly := setupEnv{ProxyURL: here.ProxyURL, Providers: []string{"openai", "groq"}}
	pi, _ := applyPi(nil, openaiOnly)
	cn, _ := applyContinue(nil, openaiOnly)
	for _, out := range []string{string(pi), string(cn)} {
		if !strings.Contains(out, "/openai") || strings.Contains(out, "/anthropic") || strings.Contains(out, "/gemini") {
			t.Errorf("with openai keys only:\n%s", out)
		}
	}
	if all, _ := applyPi(nil, setupEnv{ProxyURL: here.ProxyURL}); strings.Count(string(all), "baseUrl") != 3 {
		t.Errorf("with no keys:\n%s", all)
	}
	// opencode and Kilo need their file for Google models alone.
	for _, name := range []string{"opencode", "kilo"} {
		if tl, _ := findTool(name); len(tl.check(nil, openaiOnly)) != 0 || len(tl.check(nil, here)) == 0 {
			t.Errorf("%s without a file: %v with openai keys only, %v with a gemini key", name, tl.check(nil, openaiOnly), tl.check(nil, here))
		}
	}
}

// Continue configs of ordinary shapes get llmkey's models first in their
// list, as YAML that means the user's settings plus those models, and
// taking llmkey's part out gives the file back; shapes it cannot take are
// refused with what to do.
func TestContinueConfigShapes(t *testing.T) {
	for _, before := range []string{
		"name: x\nversion: 1.0.0\nschema: v1\nmodels:\n- name: m\n  provider: ollama\n  model: llama\n",
		"name: x\nversion: 1.0.0\nschema: v1\nmodels: # mine\n  # the first\n  - name: m\n    provider: ollama\n    model: llama\nrules:\n  - be brief\n",
		"name: x\nversion: 1.0.0\nschema: v1\nmodels:\ncontext:\n  - provider: code\n",
		"name: x\nversion: 1.0.0\nschema: v1\nrules:\n  - be brief",
	} {
		after, err := applyContinue([]byte(before), here)
		if err != nil {
			t.Errorf("%q: %v", before, err)
			continue
		}
		if got := continueBase(string(after)); strings.TrimSuffix(got, "\n") != strings.TrimSuffix(before, "\n") {
			t.Errorf("taken out again:\n%q\nwas:\n%q", got, before)
		}
		if !strings.Contains(string(after), "(llmkey)") {
			t.Errorf("%q:\n%s", before, after)
		}
	}
	for _, tt := range []struct{ before, says string }{
		{"models: []\n", "not a list of '- ' items"},
		{"models: [\n", "not valid YAML"},
	} {
		if _, err := applyContinue([]byte(tt.before), here); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%q: %v", tt.before, err)
		}
	}
}

// doctor names every variable exec clears, with why (the wire package's
// table, from which exec takes them too).
func TestDoctorNamesWhatExecClears(t *testing.T) {
	var cleared []string
	for _, p := range state.BuiltinNames() {
		_, u := wire.SDKEnv(p, "http://127.0.0.1:1/"+p, "t")
		for _, n := range u {
			if !slices.Contains(cleared, n) {
				cleared = append(cleared, n)
			}
		}
	}
	for _, n := range cleared {
		if clearedWhy(n).Why == "" {
			t.Errorf("exec clears %s, and doctor has no reason for it", n)
		}
	}
	env := map[string]string{"OPENAI_BASE_URL": "http://127.0.0.1:7/openai", "LLMKEY_URL": "http://127.0.0.1:5565"}
	for _, n := range cleared {
		env[n] = "x"
	}
	found, notes := envFindings(func(k string) string { return env[k] }, here.ProxyURL)
	var said strings.Builder
	for _, f := range append(found, notes...) {
		said.WriteString(f.problem + "\n")
	}
	for _, n := range append(cleared, "OPENAI_BASE_URL") {
		if !strings.Contains(said.String(), n+" is set in this shell") {
			t.Errorf("doctor does not name %s:\n%s", n, said.String())
		}
	}
	if strings.Contains(said.String(), "LLMKEY_URL") {
		t.Errorf("doctor names LLMKEY_URL, which points at the daemon:\n%s", said.String())
	}
}

// A member taken out of a JSON file takes its comma and space with it,
// every other byte kept.
func TestJSONDelete(t *testing.T) {
	for _, tt := range []struct {
		doc  string
		path []string
		want string
	}{
		{"{\n  \"a\": 1,\n  \"b\": 2\n}\n", []string{"a"}, "{\n  \"b\": 2\n}\n"},
		{"{\n  \"a\": 1,\n  \"b\": 2\n}\n", []string{"b"}, "{\n  \"a\": 1\n}\n"},
		{"{\n  \"a\": {\"x\": true}\n}", []string{"a", "x"}, "{\n  \"a\": {}\n}"},
		{`{"a":1,"b":{"c":[1,{"d":2}],"e":"}"},"f":3}`, []string{"b"}, `{"a":1,"f":3}`},
		{`{"a":1}`, []string{"z"}, `{"a":1}`},
	} {
		if got, err := jsonDelete([]byte(tt.doc), tt.path); err != nil || string(got) != tt.want {
			t.Errorf("jsonDelete(%q, %v) = %q %v, want %q", tt.doc, tt.path, got, err, tt.want)
		}
	}
}

// A tool that rewrites its JSON file (in its own format, adding its own
// members) leaves undo able to take llmkey's values out alone: each put
// back as it was, or removed with the objects setup made for it (a
// provider entry that cline needs whole stays, without llmkey's base
// URL); a value the tool changed is not undone over it.
func TestUndoAfterTheToolRewroteItsFile(t *testing.T) {
	for _, tt := range []struct{ tool, before string }{
		{"qwen", "{\"ui\": {\"theme\": \"GitHub\"}, \"security\": {\"auth\": {\"selectedType\": \"qwen-oauth\"}}}"},
		{"kilo", ""},
		{"opencode", `{"provider":{"google":{"options":{"timeout":5}}}}`},
		{"pi", ""},
		{"cline", ""},
		{"cline", `{"version":1,"lastUsedProvider":"anthropic","providers":{"anthropic":{"settings":{"provider":"anthropic"},"updatedAt":"2026-01-01T00:00:00.000Z"}}}`},
	} {
		tl, _ := findTool(tt.tool)
		start := tt.before
		if start == "" {
			start = tl.seed
		}
		after, err := tl.apply([]byte(start), here)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := newSetupRecord(nil, "f", []byte(tt.before), after, tt.before != "", tl)
		if err != nil {
			t.Fatal(err)
		}
		// The tool writes the file anew, in its own format, with a
		// member of its own.
		var doc map[string]any
		json.Unmarshal(after, &doc)
		doc["tool"] = "wrote"
		rewritten, _ := json.MarshalIndent(doc, "", "  ")
		back, ok := rec.restoreMembers(rewritten)
		var want map[string]any
		json.Unmarshal([]byte(start), &want)
		if want == nil {
			want = map[string]any{}
		}
		want["tool"] = "wrote"
		if tt.tool == "cline" { // the entry setup added stays, without llmkey's base URL
			want["providers"].(map[string]any)[clineProvider] = map[string]any{"settings": map[string]any{"provider": clineProvider}, "updatedAt": "1970-01-01T00:00:00.000Z"}
		}
		var got map[string]any
		json.Unmarshal(back, &got)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: undo after the tool rewrote the file gives %s %v, want %v", tt.tool, back, ok, want)
		}
		changed := strings.Replace(string(rewritten), strings.Trim(rec.Members[0].Wrote, `"`), "changed-by-hand", 1)
		if _, ok := rec.restoreMembers([]byte(changed)); ok || !strings.Contains(changed, "changed-by-hand") {
			t.Errorf("%s: undo over a value changed since: %s", tt.tool, changed)
		}
	}
}

// A second setup (the daemon moved) over a file the tool rewrote since
// the first still undoes to before the first, what the tool wrote kept.
func TestSetupAgainAfterTheToolRewroteItsFile(t *testing.T) {
	before := []byte(`{"version":1,"lastUsedProvider":"anthropic","providers":{}}`)
	after, _ := applyCline(before, here)
	cl, _ := findTool("cline")
	rec, _ := newSetupRecord(nil, "f", before, after, true, cl)
	var doc map[string]any
	json.Unmarshal(after, &doc)
	doc["tool"] = "wrote"
	rewritten, _ := json.MarshalIndent(doc, "", "  ")
	again, _ := applyCline(rewritten, moved)
	rec2, _ := newSetupRecord(&rec, "f", rewritten, again, true, cl)
	back, ok := rec2.restore(again)
	var got map[string]any
	json.Unmarshal(back, &got)
	if !ok || got["lastUsedProvider"] != "anthropic" || got["tool"] != "wrote" || strings.Contains(string(back), "127.0.0.1") {
		t.Errorf("undo after two setups, the tool's rewrite between: %s %v", back, ok)
	}
}

// A program named pi or cn that is not the agent's own (npm links the
// agent's into its package) is not taken for the agent: doctor and exec
// say nothing of its setup.
func TestToolsWithCommonNamesAreTheirOwn(t *testing.T) {
	dir := t.TempDir()
	other, own := filepath.Join(dir, "other"), filepath.Join(dir, "node_modules", "@mariozechner", "pi-coding-agent", "dist")
	for _, d := range []string{other, own} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(other, "pi"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(own, "cli.js"), []byte("#!/usr/bin/env node\n"), 0o755)
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o700)
	os.Symlink(filepath.Join(own, "cli.js"), filepath.Join(bin, "pi"))
	pi, _ := findTool("pi")
	t.Setenv("PATH", other)
	if pi.runBy("pi") {
		t.Error("another program named pi is taken for the agent")
	}
	if _, ok := toolRunBy(filepath.Join(other, "pi")); ok {
		t.Error("exec takes another program named pi for the agent")
	}
	t.Setenv("PATH", bin)
	if !pi.runBy("pi") {
		t.Error("pi as npm links it is not taken for the agent")
	}
}
