// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Completion in the real shells, typed in a real terminal (tmux): the
// scripts llmkey prints, loaded as the README says, complete commands,
// options, --by values and key names from the keyfile.
func TestCompletionInBashZshAndFish(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-"), "anthropic": u.canary("sk-ant-")})
	bin := llmkeyOnPath(t, u)
	tm := newTmux(t, u)
	shells := []struct{ name, start, load string }{
		{"bash", "bash --norc --noprofile", "source <(llmkey completion bash)"},
		{"zsh", "zsh -f", "autoload -U compinit && compinit -u && source <(llmkey completion zsh)"},
		{"fish", "fish --no-config", "set -g fish_greeting; llmkey completion fish | source"},
	}
	var missing []string
	for _, sh := range shells {
		func() {
			if msg := missingTool(t, sh.name, sh.name); msg != "" {
				missing = append(missing, msg)
				return
			}
			s := startShell(t, tm, sh.name, sh.start, "PATH="+bin+":"+os.Getenv("PATH"))
			defer s.close()
			s.run(sh.load)
			// typed is what is typed before Tab; each want must then show.
			for _, c := range []struct {
				typed string
				want  []string
			}{
				{"llmkey usa", []string{"llmkey usage "}},
				{"llmkey list --", []string{"--json", "--wide", "--no-color"}},
				{"llmkey status --q", []string{"llmkey status --quiet"}},
				{"llmkey usage --by ", []string{"model", "provider", "label"}},
				{"llmkey rm ", []string{"openai/work", "anthropic/work"}},
				{"llmkey disable op", []string{"llmkey disable openai/work"}},
				{"llmkey setup ", []string{"codex", "opencode", "claude"}},
			} {
				s.complete(c.typed, c.want...)
			}
			if sc := s.screen(); strings.Contains(sc, "keys.toml") || strings.Contains(sc, "tmp") {
				t.Errorf("%s: file names offered where none belong:\n%s", sh.name, sc)
			}
		}()
	}
	if len(missing) > 0 { // the other shells were tested
		t.Skip(strings.Join(missing, "; "))
	}
}

// completion SHELL --install puts each script where that shell looks for
// a user's own: a new bash with bash-completion, a new zsh with the
// directory install names on its fpath (as it says to add), and a new
// fish complete with nothing else loaded. XDG_DATA_HOME and
// XDG_CONFIG_HOME move the directories, as the shells themselves do.
func TestCompletionInstallForEachShell(t *testing.T) {
	bashCompletion := bashCompletionScript(t)
	u := newUser(t)
	bin := llmkeyOnPath(t, u)
	tm := newTmux(t, u)
	for _, xdg := range []bool{false, true} {
		env := []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
		data, config := filepath.Join(u.home, ".local", "share"), filepath.Join(u.home, ".config")
		if xdg {
			data, config = filepath.Join(u.home, "xdg-data"), filepath.Join(u.home, "xdg-config")
			env = append(env, "XDG_DATA_HOME="+data, "XDG_CONFIG_HOME="+config)
		}
		for _, sh := range []struct{ name, start, want, load string }{
			{"bash", "bash --norc --noprofile", filepath.Join(data, "bash-completion", "completions", "llmkey"), "source " + bashCompletion},
			{"zsh", "zsh -f", filepath.Join(data, "zsh", "site-functions", "_llmkey"), ""},
			{"fish", "fish", filepath.Join(config, "fish", "completions", "llmkey.fish"), "set -g fish_greeting"},
		} {
			r := mustSucceed(t, u.run(nil, env, "completion", sh.name, "--install"))
			if !strings.HasPrefix(r.stderr, "wrote "+sh.want+"\n") {
				t.Fatalf("completion %s --install (xdg %v): %v", sh.name, xdg, r)
			}
			if got, want := readFile(t, sh.want), mustSucceed(t, u.llmkey("completion", sh.name)).stdout; got != want {
				t.Errorf("%s: the file installed is not llmkey completion %s", sh.want, sh.name)
			}
			load := sh.load
			if sh.name == "zsh" {
				// The line install says to put in ~/.zshrc, then compinit.
				_, line, ok := strings.Cut(r.stderr, "\n  ")
				if !ok || !strings.HasPrefix(line, "fpath=(") {
					t.Fatalf("completion zsh --install does not say what to add to fpath: %v", r)
				}
				load = strings.TrimSpace(line) + " && autoload -U compinit && compinit -u"
			}
			func() {
				s := startShell(t, tm, sh.name, sh.start, env...)
				defer s.close()
				s.run(load)
				s.complete("llmkey li", "llmkey list ")
				s.complete("llmkey completion ", "bash", "zsh", "fish")
			}()
		}
	}
}

// bashCompletionScript is bash-completion's script, which a user's
// ~/.bashrc sources: Debian's, or Homebrew's bash-completion@2.
func bashCompletionScript(t *testing.T) string {
	for _, p := range []string{"/usr/share/bash-completion/bash_completion", "/opt/homebrew/share/bash-completion/bash_completion", "/usr/local/share/bash-completion/bash_completion"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("bash-completion is needed (apt-get install bash-completion, brew install bash-completion@2; .ci/run installs it)")
	return ""
}

// llmkeyOnPath is a directory holding llmkey, for a shell's PATH.
func llmkeyOnPath(t *testing.T, u *user) string {
	bin := filepath.Join(u.home, "bin")
	os.Mkdir(bin, 0o755)
	if err := os.Symlink(llmkeyBin, filepath.Join(bin, "llmkey")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	return bin
}

// shellSession is a shell in a window of a tmux terminal, typed into as
// a person would.
type shellSession struct {
	t     *testing.T
	tm    *tmuxTerm
	name  string
	shell string
	n     int
}

// startShell starts the command line start of shell in a new window,
// with env on top of the user's.
func startShell(t *testing.T, tm *tmuxTerm, shell, start string, env ...string) *shellSession {
	t.Helper()
	needTool(t, shell, shell)
	tm.n++
	s := &shellSession{t: t, tm: tm, name: fmt.Sprintf("c%s%d", shell, tm.n), shell: shell}
	args := []string{"new-session", "-d", "-x", "120", "-y", "40", "-s", s.name, "env"}
	args = append(append(args, env...), "PS1=$ ", "sh", "-c", "exec "+start)
	tm.tmux(args...)
	return s
}

func (s *shellSession) close()         { s.tm.tmux("kill-session", "-t", s.name) }
func (s *shellSession) screen() string { return s.tm.tmux("capture-pane", "-p", "-J", "-t", s.name) }

func (s *shellSession) waitFor(what string, ok func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sc := s.screen()
		if ok(sc) {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %s never showed:\n%s", s.shell, what, sc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run types line and waits for it to have run.
func (s *shellSession) run(line string) {
	s.t.Helper()
	s.n++
	mark := fmt.Sprintf("ran-%d-ok", s.n)
	if line != "" {
		line += "; "
	}
	// The mark is echoed in two pieces, so that only its output matches.
	s.tm.tmux("send-keys", "-t", s.name, line+"echo ran-"+fmt.Sprint(s.n)+"-''ok", "Enter")
	s.waitFor("running "+line, func(sc string) bool { return strings.Contains(sc, "\n"+mark) })
}

// complete clears the screen, types typed and Tab, and waits for each of
// want to show; then it empties the line.
func (s *shellSession) complete(typed string, want ...string) {
	s.t.Helper()
	s.tm.tmux("send-keys", "-t", s.name, "clear", "Enter")
	s.waitFor("a clear screen", func(sc string) bool { return !strings.Contains(sc, "-ok") && strings.Count(sc, "$") <= 1 })
	s.tm.tmux("send-keys", "-t", s.name, typed, "Tab")
	if s.shell == "bash" {
		time.Sleep(100 * time.Millisecond)
		s.tm.tmux("send-keys", "-t", s.name, "Tab") // bash lists on the second Tab
	}
	s.waitFor(strings.Join(want, ", ")+" after "+typed+"<Tab>", func(sc string) bool {
		for _, w := range want {
			if !strings.Contains(sc, w) {
				return false
			}
		}
		return true
	})
	// Let the shell finish, then empty the line: C-c could land in the
	// middle of a completion.
	time.Sleep(200 * time.Millisecond)
	s.tm.tmux("send-keys", "-t", s.name, "C-e", "C-u")
}
