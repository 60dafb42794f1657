// SPDX-License-Identifier: MIT

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A piped add creates the keyfile 0600 in a 0700
// directory with one block; a second add of the name fails; list --json
// shows provider, name and a masked secret, never the secret.
func TestAddCreatesPrivateKeyfileAndListMasks(t *testing.T) {
	u := newUser(t)
	secret := u.canary("sk-proj-")
	r := mustSucceed(t, u.pipe(secret, "add", "openai", "work"))
	if !strings.Contains(r.stderr, "added openai/work (sk-proj-…") {
		u.errorf("add did not confirm: %v", r)
	}

	data := readFile(t, u.keyfile())
	if got := strings.Count(data, "[[key]]"); got != 1 || !strings.Contains(data, `secret = "`+secret+`"`) {
		u.fatalf("keyfile holds %d blocks:\n%s", got, data)
	}
	for path, want := range map[string]os.FileMode{u.keyfile(): 0o600, filepath.Dir(u.keyfile()): 0o700} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			u.errorf("%s: mode %v, want %v (%v)", path, fi.Mode().Perm(), want, err)
		}
	}

	other := u.canary("sk-proj-")
	r = u.pipe(other, "add", "openai", "work")
	if r.code == 0 || !strings.Contains(r.stderr, "openai/work already exists") || !strings.Contains(r.stderr, "hint:") {
		u.fatalf("duplicate add: %v", r)
	}
	if readFile(t, u.keyfile()) != data {
		t.Fatal("a refused add changed the keyfile")
	}

	var out struct {
		Keyfile string `json:"keyfile"`
		Daemon  struct {
			Running bool `json:"running"`
		} `json:"daemon"`
		Keys []map[string]any `json:"keys"`
	}
	r = mustSucceed(t, u.llmkey("list", "--json"))
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		u.fatalf("list --json is not JSON: %v\n%s", err, r.stdout)
	}
	if out.Keyfile != u.keyfile() || out.Daemon.Running || len(out.Keys) != 1 {
		u.fatalf("list --json: %+v", out)
	}
	k := out.Keys[0]
	wantMask := "sk-proj-…" + secret[len(secret)-4:]
	if k["provider"] != "openai" || k["name"] != "work" || k["masked_secret"] != wantMask {
		u.errorf("list --json key: %v (want masked %q)", k, wantMask)
	}
	if k["state"] != "unknown" || k["reason"] != "daemon not running" {
		u.errorf("state without a daemon: %v", k)
	}

	r = mustSucceed(t, u.llmkey("ls"))
	if !regexp.MustCompile(`(?m)^openai\s+work\s+sk-proj-…\w{4}\s+unknown\s+-\s+0\s+0\s+-\s+daemon not running$`).MatchString(r.stdout) {
		u.errorf("list table:\n%s", r.stdout)
	}
}

func TestAddOptionsNamesAndEnvironment(t *testing.T) {
	u := newUser(t)
	mustSucceed(t, u.pipe(u.canary("sk-")+"\n", "add", "openai", "--rpm", "60", "--max-concurrent", "2"))
	// flags after the arguments work too
	mustSucceed(t, u.pipe(u.canary("sk-ant-"), "add", "anthropic", "team", "--tpm", "1000", "--weight", "3", "--models", "claude-*,claude-3", "--models", "x"))
	mustSucceed(t, u.pipe(u.canary("sk-"), "add", "openai"))

	var out struct{ Keys []map[string]any }
	json.Unmarshal([]byte(mustSucceed(t, u.llmkey("list", "--json")).stdout), &out)
	var names []string
	for _, k := range out.Keys {
		names = append(names, k["provider"].(string)+"/"+k["name"].(string))
	}
	if strings.Join(names, " ") != "openai/key1 anthropic/team openai/key2" {
		u.fatalf("keys: %v", names)
	}
	if k := out.Keys[0]; k["rpm"] != 60.0 || k["max_concurrent"] != 2.0 {
		u.errorf("limits of key1: %v", k)
	}
	if k := out.Keys[1]; k["tpm"] != 1000.0 || k["weight"] != 3.0 || len(k["models"].([]any)) != 3 {
		u.errorf("limits of team: %v", k)
	}

	// --keyfile, LLMKEY_KEYFILE and XDG_CONFIG_HOME choose the file.
	alt := filepath.Join(u.home, "alt", "k.toml")
	mustSucceed(t, u.pipe(u.canary("sk-"), "--keyfile", alt, "add", "openai", "a"))
	mustSucceed(t, u.pipe(u.canary("sk-"), "add", "--keyfile", alt, "openai", "b"))
	r := mustSucceed(t, u.run(nil, []string{"LLMKEY_KEYFILE=" + alt}, "list"))
	if !strings.Contains(r.stdout, "openai    a") || !strings.Contains(r.stdout, "openai    b") || strings.Contains(r.stdout, "team") {
		u.errorf("LLMKEY_KEYFILE list:\n%s", r.stdout)
	}
	// The flag wins over the environment, wherever it stands.
	other := filepath.Join(u.home, "other.toml")
	mustSucceed(t, u.run(strings.NewReader(u.canary("sk-")), []string{"LLMKEY_KEYFILE=" + alt}, "--keyfile", other, "add", "openai", "c"))
	mustSucceed(t, u.run(strings.NewReader(u.canary("sk-")), []string{"LLMKEY_KEYFILE=" + alt}, "add", "openai", "d", "--keyfile", other))
	if data := readFile(t, other); !strings.Contains(data, `name = "c"`) || !strings.Contains(data, `name = "d"`) {
		u.errorf("--keyfile did not win over LLMKEY_KEYFILE:\n%s", data)
	}
	xdg := filepath.Join(u.home, "xdg")
	mustSucceed(t, u.run(strings.NewReader(u.canary("sk-")), []string{"XDG_CONFIG_HOME=" + xdg}, "add", "groq", "g"))
	if _, err := os.Stat(filepath.Join(xdg, "llmkey", "keys.toml")); err != nil {
		u.errorf("XDG_CONFIG_HOME not used: %v", err)
	}
}

// A hand-written keyfile survives add, then rm of
// another key, byte for byte.
func TestHandWrittenKeyfileSurvivesAddAndRm(t *testing.T) {
	u := newUser(t)
	work, personal := u.canary("sk-proj-"), u.canary("sk-ant-")
	head := "# llmkey keys -- edited by hand\n\n[daemon]\nlisten   =  \"127.0.0.1:0\"   # any free port\n\n"
	workBlock := "# billed to ACME\n[[key]]\n  provider='openai'\n  name  = \"work\"\n  secret= \"" + work + "\"\n  rpm=60\n"
	personalBlock := "\n\n[[key]]    # mine\nprovider = \"anthropic\"\nname = \"personal\"\nsecret = '''" + personal + "'''\n# max_concurrent = 2\n"
	tail := "\n\n\n[provider.local]\nkind=\"openai\"\nbase_url=\"http://127.0.0.1:8000/v1\"\n# the end\n"
	writeFile(t, u.keyfile(), head+workBlock+personalBlock+tail, 0o600)

	added := u.canary("sk-")
	mustSucceed(t, u.pipe(added, "add", "openai", "new"))
	mustSucceed(t, u.llmkey("rm", "--force", "openai/work"))

	newBlock := "\n[[key]]\nprovider = \"openai\"\nname = \"new\"\nsecret = \"" + added + "\"\n"
	want := head[:len(head)-1] + personalBlock + newBlock + tail
	if got := readFile(t, u.keyfile()); got != want {
		u.fatalf("keyfile changed beyond the two blocks:\ngot:\n%q\nwant:\n%q", got, want)
	}
	mustSucceed(t, u.llmkey("rm", "openai/new", "--force"))
	if got, want := readFile(t, u.keyfile()), head[:len(head)-1]+personalBlock+tail; got != want {
		u.fatalf("rm of the added key did not restore the file:\n%q\n%q", got, want)
	}
}

// Each broken keyfile gives a non-zero exit and a
// message naming the problem, the line, and the fix.
func TestBrokenKeyfiles(t *testing.T) {
	key := func(provider, name string) string {
		return "[[key]]\nprovider = \"" + provider + "\"\nname = \"" + name + "\"\nsecret = \"sk-aaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"
	}
	tests := []struct {
		name string
		data string
		mode os.FileMode
		want []string
	}{
		{"group readable", key("openai", "a"), 0o640, []string{"readable or writable by others (mode 0640)", "hint: chmod 600 "}},
		{"world readable", key("openai", "a"), 0o604, []string{"(mode 0604)", "hint: chmod 600 "}},
		{"syntax error", "# keys\n" + key("openai", "a") + "rpm = 60 x\n", 0o600, []string{"keys.toml:6:", "hint: fix the TOML syntax"}},
		{"unknown provider", key("openai", "a") + "\n" + key("opnai", "b"), 0o600, []string{"keys.toml:7:", `unknown provider "opnai"`, `hint: did you mean "openai"?`}},
		{"duplicate name", key("openai", "a") + "\n" + key("openai", "a"), 0o600, []string{"keys.toml:8:", "duplicate key openai/a (also key[1] on line 1)", "hint: give each key"}},
		{"unknown field", key("openai", "a") + "rmp = 1\n", 0o600, []string{"keys.toml:5:", "key.rmp: unknown field", `hint: did you mean "rpm"?`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t)
			writeFile(t, u.keyfile(), tt.data, tt.mode)
			for _, args := range [][]string{{"list"}, {"list", "--json"}} {
				r := u.llmkey(args...)
				if r.code != 4 {
					u.errorf("%v: exit %d, want 4: %v", args, r.code, r)
				}
				for _, w := range tt.want {
					if !strings.Contains(r.stderr, w) {
						u.errorf("%v: stderr lacks %q:\n%s", args, w, r.stderr)
					}
				}
				// One key of an unknown provider: list shows the others
				// all the same, and that one as invalid, then the error.
				if tt.name == "unknown provider" && len(args) == 1 {
					if !regexp.MustCompile(`(?m)^openai\s+a\s.*\sunknown\s`).MatchString(r.stdout) ||
						!regexp.MustCompile(`(?m)^opnai\s+b\s+\S+\s+invalid\s.*unknown provider "opnai": fix the keyfile$`).MatchString(r.stdout) {
						u.errorf("list of a keyfile with one bad key:\n%s", r.stdout)
					}
				} else if r.stdout != "" && (tt.name != "duplicate name" || len(args) > 1) {
					u.errorf("%v: printed to stdout on error: %q", args, r.stdout)
				}
			}
			before := readFile(t, u.keyfile())
			if r := u.pipe(u.canary("sk-"), "add", "openai", "zzz"); r.code == 0 {
				u.errorf("add into a broken keyfile succeeded: %v", r)
			}
			if readFile(t, u.keyfile()) != before {
				t.Error("a failed add changed the keyfile")
			}
		})
	}
}

func TestRmFromScriptsAndUnknownKeys(t *testing.T) {
	u := newUser(t)
	mustSucceed(t, u.pipe(u.canary("sk-"), "add", "openai", "work"))
	before := readFile(t, u.keyfile())

	r := u.llmkey("rm", "openai/work")
	if r.code != 2 || !strings.Contains(r.stderr, "without confirmation") || !strings.Contains(r.stderr, "hint: pass --force") {
		u.fatalf("rm without a terminal or --force: %v", r)
	}
	if readFile(t, u.keyfile()) != before {
		t.Fatal("refused rm changed the keyfile")
	}
	r = u.llmkey("rm", "-f", "openai/nope")
	if r.code != 1 || !strings.Contains(r.stderr, "no key openai/nope in "+u.keyfile()) || !strings.Contains(r.stderr, "hint: 'llmkey list'") {
		u.fatalf("rm of an unknown key: %v", r)
	}
	r = u.llmkey("rm", "-f", "openai")
	if r.code != 2 || !strings.Contains(r.stderr, "is not PROVIDER/NAME") {
		u.fatalf("rm of a malformed ref: %v", r)
	}
	mustSucceed(t, u.llmkey("rm", "openai/work", "--force"))
	if strings.Contains(readFile(t, u.keyfile()), "work") {
		t.Fatal("key not removed")
	}
	r = newUser(t).llmkey("rm", "-f", "openai/work")
	if r.code != 4 || !strings.Contains(r.stderr, "does not exist") || !strings.Contains(r.stderr, "hint: add a key first") {
		u.fatalf("rm without a keyfile: %v", r)
	}
}

// A secret must never be taken from argv, and must not be echoed back
// when someone tries.
func TestSecretOnCommandLineRefused(t *testing.T) {
	u := newUser(t)
	secret := u.canary("sk-proj-")
	for _, args := range [][]string{
		{"add", "openai", "work", secret},
		{"add", "openai", secret},
		{secret},
	} {
		r := u.pipe("", args...)
		if r.code != 2 {
			u.errorf("%d args: exit %d, want 2: %v", len(args), r.code, r)
		}
	}
	if _, err := os.Stat(u.keyfile()); err == nil {
		t.Fatal("a keyfile was written")
	}
}

func TestAddRejectsBadInput(t *testing.T) {
	u := newUser(t)
	tests := []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"", []string{"add", "openai", "w"}, 1, "no secret on standard input"},
		{"sk-a b", []string{"add", "openai", "w"}, 1, "spaces or control characters"},
		{"sk-a", []string{"add", "opneai", "w"}, 1, `did you mean "openai"`},
		{"sk-a", []string{"add", "openai", "bad/name"}, 2, "invalid key name"},
		{"sk-a", []string{"add", "openai", "w", "--rpm", "-1"}, 2, "--rpm must not be negative"},
		{"sk-a", []string{"add"}, 2, "missing argument"},
		{"sk-a", []string{"add", "--bogus", "openai"}, 2, "unknown option --bogus"},
		{"", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		r := u.pipe(tt.stdin, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "hint: ") {
			u.errorf("%v: want exit %d and %q with a hint, got %v", tt.args, tt.code, tt.want, r)
		}
	}
	if _, err := os.Stat(u.keyfile()); err == nil {
		t.Error("a refused add wrote a keyfile")
	}
}

// The man page is the one generated from the command tree, and is a section 1 roff page.
func TestManMatchesCheckedInPage(t *testing.T) {
	u := newUser(t)
	r := mustSucceed(t, u.llmkey("man"))
	if !strings.Contains(r.stdout, "\n.TH LLMKEY 1 ") {
		u.fatalf("not a section 1 roff page:\n%.300s", r.stdout)
	}
	if want := readFile(t, filepath.Join("man", "llmkey.1")); r.stdout != want {
		t.Fatal("llmkey man differs from man/llmkey.1; regenerate with: go test ./cli -run TestManPage -update")
	}
}

func TestVersionAndCompletion(t *testing.T) {
	u := newUser(t)
	if r := mustSucceed(t, u.llmkey("version")); !regexp.MustCompile(`^llmkey \S+ \(.*go1\.\d+.*, \w+/\w+\)\n$`).MatchString(r.stdout) {
		u.errorf("version: %q", r.stdout)
	}
	for shell, want := range map[string]string{"bash": "complete -F _llmkey llmkey", "zsh": "compdef _llmkey llmkey", "fish": "complete -c llmkey"} {
		if r := mustSucceed(t, u.llmkey("completion", shell)); !strings.Contains(r.stdout, want) {
			u.errorf("completion %s lacks %q", shell, want)
		}
	}
	if r := u.llmkey("completion", "tcsh"); r.code != 2 {
		u.errorf("completion tcsh: %v", r)
	}
	mustSucceed(t, u.pipe(u.canary("sk-"), "add", "openai", "work"))
	if r := mustSucceed(t, u.llmkey("rm", "--generate-bash-completion")); strings.TrimSpace(r.stdout) != "openai/work" {
		u.errorf("rm completes %q, want openai/work", r.stdout)
	}
	if r := mustSucceed(t, u.llmkey("add", "--generate-bash-completion")); !strings.Contains(r.stdout, "anthropic\n") {
		u.errorf("add completes %q", r.stdout)
	}
}

// On a terminal the secret is read with echo off: what the person types
// never shows on the screen.
func TestAddOnTerminalDoesNotEcho(t *testing.T) {
	u := newUser(t)
	secret := u.canary("sk-proj-")
	tm := u.terminal("add", "openai", "typed")
	tm.waitFor("secret for openai/typed (input hidden): ")
	tm.typeLine(secret)
	code, screen := tm.wait()
	if code != 0 || !strings.Contains(screen, "added openai/typed") {
		u.fatalf("exit %d:\n%s", code, screen)
	}
	u.assertNoCanary(screen)
	if !strings.Contains(readFile(t, u.keyfile()), secret) {
		t.Fatal("typed secret not stored")
	}
}

func TestRmOnTerminalAsks(t *testing.T) {
	u := newUser(t)
	mustSucceed(t, u.pipe(u.canary("sk-"), "add", "openai", "work"))
	before := readFile(t, u.keyfile())

	tm := u.terminal("rm", "openai/work")
	tm.waitFor("remove openai/work (sk-…")
	tm.waitFor("[y/N] ")
	tm.typeLine("")
	if code, screen := tm.wait(); code != 1 || !strings.Contains(screen, "not removed") {
		u.fatalf("answering no: exit %d:\n%s", code, screen)
	}
	if readFile(t, u.keyfile()) != before {
		t.Fatal("declined rm changed the keyfile")
	}

	tm = u.terminal("rm", "openai/work")
	tm.waitFor("[y/N] ")
	tm.typeLine("y")
	if code, screen := tm.wait(); code != 0 || !strings.Contains(screen, "removed openai/work") {
		u.fatalf("answering yes: exit %d:\n%s", code, screen)
	}
	if strings.Contains(readFile(t, u.keyfile()), "work") {
		t.Fatal("key not removed")
	}
}
