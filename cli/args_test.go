// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/state"
)

func TestPermuteArgs(t *testing.T) {
	app := NewApp()
	tests := []struct{ in, want string }{
		{"llmkey rm openai/work --force", "llmkey rm --force openai/work"},
		{"llmkey add openai work --rpm 60 --models a,b", "llmkey add --rpm 60 --models a,b openai work"},
		{"llmkey --keyfile k.toml add openai --rpm=5", "llmkey --keyfile k.toml add --rpm=5 openai"},
		{"llmkey add openai -- --weird-name", "llmkey add openai -- --weird-name"},
		{"llmkey list --json", "llmkey list --json"},
		{"llmkey nosuch a --b", "llmkey nosuch a --b"},
	}
	for _, tt := range tests {
		got := strings.Join(PermuteArgs(app, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("PermuteArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string][2]string{"openai/work": {"openai", "work"}, "local/a.b-c_d": {"local", "a.b-c_d"}} {
		p, n, err := parseRef(in)
		if err != nil || p != want[0] || n != want[1] {
			t.Errorf("parseRef(%q) = %q %q %v", in, p, n, err)
		}
	}
	for _, in := range []string{"openai", "openai/", "/work", "openai/a/b", ""} {
		if _, _, err := parseRef(in); ExitCode(err) != ExitUsage || !strings.Contains(err.(*Error).Hint, "PROVIDER/NAME") {
			t.Errorf("parseRef(%q): %v", in, err)
		}
	}
}

// run runs the command line in-process, as main does, and returns what
// it printed and its exit code.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	app := NewApp()
	var out, errb bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errb
	err := app.Run(PermuteArgs(app, append([]string{"llmkey"}, args...)))
	if err != nil {
		PrintError(&errb, err)
	}
	return out.String(), errb.String(), ExitCode(err)
}

// The argument forms every command shares: a key as PROVIDER/NAME, flags
// before or after the arguments, --keyfile before or after the command,
// and refusals that say how to write it (exit 2).
func TestArgumentForms(t *testing.T) {
	kf := filepath.Join(t.TempDir(), "keys.toml")
	t.Setenv("LLMKEY_RUNTIME_DIR", t.TempDir())
	t.Setenv("LLMKEY_STATE_DIR", t.TempDir())
	tests := []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"rm", "openai"}, ExitUsage, `"openai" is not PROVIDER/NAME`},
		{[]string{"rm", "openai", "work", "extra"}, ExitUsage, "too many arguments (3 given, at most 2)"},
		{[]string{"rm", "openai/work", "extra"}, ExitUsage, `"openai/work/extra" is not PROVIDER/NAME`},
		{[]string{"--keyfile", kf, "rm", "--force", "openai", "work"}, ExitKeyfile, "does not exist"},
		{[]string{"rm"}, ExitUsage, "rm: missing argument"},
		{[]string{"--keyfile", kf, "rm", "openai/work", "--force"}, ExitKeyfile, "does not exist"},
		{[]string{"rm", "--keyfile", kf, "--force", "openai/work"}, ExitKeyfile, "does not exist"},
		{[]string{"list", "--nope"}, ExitUsage, "unknown option --nope"},
		{[]string{"usage", "--by", "colour"}, ExitUsage, `unknown --by "colour"`},
		{[]string{"env", "--shell", "tcsh"}, ExitUsage, `unknown shell "tcsh"`},
		{[]string{"nosuch"}, ExitUsage, `unknown command "nosuch"`},
		{[]string{"sk-proj-aaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, ExitUsage, "looks like a secret"},
		{[]string{"add", "openai", "sk-proj-aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "--keyfile", kf}, ExitUsage, "looks like a secret"},
		{[]string{"lsit"}, ExitUsage, "did you mean 'llmkey list'?"},
		{[]string{"mv", "openai/a", "b"}, ExitUsage, "did you mean 'llmkey rename'?"},
		{[]string{"move"}, ExitUsage, "did you mean 'llmkey rename'?"},
		{[]string{"list", "--jsn"}, ExitUsage, "did you mean --json?"},
		{[]string{"add", "--rpm", "sixty", "openai", "w"}, ExitUsage, `--rpm takes a whole number, e.g. --rpm 60, not "sixty"`},
		{[]string{"disable", "--for", "soon", "openai/work"}, ExitUsage, `--for "soon" is not a duration`},
		{[]string{"usage", "--since", "the-dawn"}, ExitUsage, "today or yesterday"},
		{[]string{"env", "--shell", "csh"}, ExitUsage, `unknown shell "csh"`},
	}
	for _, tt := range tests {
		_, stderr, code := run(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("llmkey %s: exit %d (want %d), stderr:\n%s", strings.Join(tt.args, " "), code, tt.code, stderr)
		}
		if strings.Contains(stderr, "sk-proj-") {
			t.Errorf("llmkey %s repeated the secret: %s", strings.Join(tt.args, " "), stderr)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	t.Setenv("LLMKEY_RUNTIME_DIR", t.TempDir())
	out, _, code := run(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "llmkey "+Version+" (") {
		t.Errorf("--version: %d %q", code, out)
	}
}

func TestParseDurations(t *testing.T) {
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{"today": "2026-11-24", "yesterday": "2026-11-23", "1d": "2026-11-23", "1d12h": "2026-11-22"} {
		if got, err := sinceDay(in, now); err != nil || got != want {
			t.Errorf("--since %s: %q %v, want %s", in, got, err, want)
		}
	}
	for in, want := range map[string]time.Duration{"1d": 24 * time.Hour, "90s": 90 * time.Second, "2d3h": 51 * time.Hour, "15m": 15 * time.Minute} {
		if got, err := state.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%s) = %v %v", in, got, err)
		}
	}
}

// An unknown command is steered to one only when that one is spelt
// nearly as typed (at most half its letters off, the first one right): a
// word that shares nothing with a command gets the list, not a stranger.
func TestUnknownCommandSuggestsOnlyLookAlikes(t *testing.T) {
	for _, word := range []string{"mv", "xy", "qq", "zap", "remov"} {
		_, stderr, code := run(t, word)
		if code != ExitUsage || !strings.Contains(stderr, "unknown command") {
			t.Errorf("llmkey %s: exit %d\n%s", word, code, stderr)
		}
		if word != "mv" && strings.Contains(stderr, "did you mean") {
			t.Errorf("llmkey %s suggests a command that only shares its length:\n%s", word, stderr)
		}
		if strings.Contains(stderr, "'llmkey ls'") {
			t.Errorf("llmkey %s suggests ls:\n%s", word, stderr)
		}
	}
}
