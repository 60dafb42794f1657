// SPDX-License-Identifier: MIT

package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// successLines fails the test if a line of stderr that is not a warning
// or its hint carries the error prefix.
func successLines(t *testing.T, r result) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "llmkey:") && !strings.HasPrefix(l, "llmkey: warning:") {
			t.Errorf("a success said with the error prefix: %q", l)
		}
	}
}

// import reads a .env file as dotenv does: a line of any length, quotes
// (and a comment after them), export, spaces around =; each key is
// stored as the value alone, and success is said without the error
// prefix.
func TestImportReadsDotenvAsDotenvDoes(t *testing.T) {
	u := newUser(t)
	oa, ant, groq, xai := u.canary("sk-proj-"), u.canary("sk-ant-api03-"), u.canary("gsk_"), u.canary("xai-")
	dotenv := filepath.Join(u.home, ".env")
	writeFile(t, dotenv, "# keys\n"+
		"GOOGLE_APPLICATION_CREDENTIALS_JSON='"+strings.Repeat("{\"k\":1}", 20000)+"'\n"+
		"OPENAI_API_KEY=\""+oa+"\" # the work key\n"+
		"export ANTHROPIC_API_KEY='"+ant+"'\t# personal\n"+
		"GROQ_API_KEY="+groq+" # free tier\n"+
		"XAI_API_KEY = \""+xai+"\"\n", 0o600)
	r := u.llmkey("import", dotenv)
	if r.code != 0 || strings.Count(r.stderr, "imported ") != 4 {
		t.Fatalf("import: %v", r)
	}
	successLines(t, r)
	keyfile := readFile(t, u.keyfile())
	for _, k := range []string{oa, ant, groq, xai} {
		if !strings.Contains(keyfile, "secret = \""+k+"\"\n") {
			t.Errorf("the keyfile does not hold the key %s... as it was given:\n%s", k[:6], u.redact(keyfile))
		}
	}
	r = mustSucceed(t, u.llmkey("import", dotenv))
	if !strings.Contains(r.stderr, "no new keys in "+dotenv) {
		t.Errorf("import again: %v", r)
	}
	successLines(t, r)
}

// An import that could import nothing because of what it found exits 1,
// each problem a warning with its line and never its value; one that
// finds no keys, or only keys already there, exits 0.
func TestImportSaysWhyNothingWasImported(t *testing.T) {
	u := newUser(t)
	dotenv := filepath.Join(u.home, ".env")
	writeFile(t, dotenv, "OPENAI_API_KEY=abc\nANTHROPIC_API_KEY=\""+u.canary("sk-ant-")+"\nGROQ_API_KEY '"+u.canary("gsk_")+"'\n", 0o600)
	r := u.llmkey("import", dotenv)
	if r.code != 1 || !strings.Contains(r.stderr, "OPENAI_API_KEY (…): skipped: 3 characters is too short") ||
		!strings.Contains(r.stderr, dotenv+":2: ANTHROPIC_API_KEY: the closing \" is missing") || !strings.Contains(r.stderr, dotenv+":3: GROQ_API_KEY: no = after the name") ||
		!strings.Contains(r.stderr, "llmkey: nothing imported from "+dotenv+": 3 problems above") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("import of nothing but problems: %v", r)
	}
	r = u.run(nil, []string{"OPENAI_API_KEY=sk-short"}, "import", "--from-env")
	if r.code != 1 || !strings.Contains(r.stderr, "nothing imported from the environment") {
		t.Errorf("import --from-env of a short key: %v", r)
	}

	writeFile(t, dotenv, "EDITOR=vi\n", 0o600)
	r = mustSucceed(t, u.llmkey("import", dotenv))
	if !strings.Contains(r.stderr, "no keys in "+dotenv+": it sets none of OPENAI_API_KEY") {
		t.Errorf("import of a file without keys: %v", r)
	}
	successLines(t, r)
}

// import --name names the keys: each under its provider, a second key of
// one provider NAME-2; a name taken is a warning, the key not imported.
func TestImportName(t *testing.T) {
	u := newUser(t)
	env := []string{"OPENAI_API_KEY=" + u.canary("sk-proj-"), "GEMINI_API_KEY=" + u.canary("AIza"), "GOOGLE_API_KEY=" + u.canary("AIza")}
	r := u.run(nil, env, "import", "--from-env", "--name", "work")
	for _, ref := range []string{"openai/work", "gemini/work", "gemini/work-2"} {
		if r.code != 0 || !strings.Contains(r.stderr, " as "+ref+",") {
			t.Errorf("import --name work: no %s: %v", ref, r)
		}
	}
	successLines(t, r)
	r = u.run(nil, []string{"OPENAI_API_KEY=" + u.canary("sk-proj-")}, "import", "--from-env", "--name", "work")
	if r.code != 1 || !strings.Contains(r.stderr, "skipped: key openai/work already exists") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("import --name of a name taken: %v", r)
	}
	if r := u.llmkey("import", "--from-env", "--name", "no/slash"); r.code != 2 {
		t.Errorf("import --name no/slash: %v", r)
	}
}
