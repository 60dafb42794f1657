package main

import (
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
	bin := filepath.Join(u.home, "bin")
	os.Mkdir(bin, 0o755)
	if err := os.Symlink(llmkeyBin, filepath.Join(bin, "llmkey")); err != nil {
		t.Fatal(err)
	}
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
			s := "c" + sh.name
			tm.tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", s, "env", "PATH="+bin+":"+os.Getenv("PATH"), "PS1=$ ", "sh", "-c", "exec "+sh.start)
			defer tm.tmux("kill-session", "-t", s)
			screen := func() string { return tm.tmux("capture-pane", "-p", "-J", "-t", s) }
			waitFor := func(what string, ok func(string) bool) string {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for {
					sc := screen()
					if ok(sc) {
						return sc
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: %s never showed:\n%s", sh.name, what, sc)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			tm.tmux("send-keys", "-t", s, sh.load+"; echo loaded-ok", "Enter")
			waitFor("loading the script", func(sc string) bool { return strings.Contains(sc, "\nloaded-ok") })
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
				tm.tmux("send-keys", "-t", s, "clear", "Enter")
				waitFor("a clear screen", func(sc string) bool { return !strings.Contains(sc, "loaded-ok") && strings.Count(sc, "$") <= 1 })
				tm.tmux("send-keys", "-t", s, c.typed, "Tab")
				if sh.name == "bash" {
					time.Sleep(100 * time.Millisecond)
					tm.tmux("send-keys", "-t", s, "Tab") // bash lists on the second Tab
				}
				waitFor(strings.Join(c.want, ", ")+" after "+c.typed+"<Tab>", func(sc string) bool {
					for _, w := range c.want {
						if !strings.Contains(sc, w) {
							return false
						}
					}
					return true
				})
				// Let the shell finish, then empty the line: C-c could
				// land in the middle of a completion.
				time.Sleep(200 * time.Millisecond)
				tm.tmux("send-keys", "-t", s, "C-e", "C-u")
			}
			if sc := screen(); strings.Contains(sc, "keys.toml") || strings.Contains(sc, "tmp") {
				t.Errorf("%s: file names offered where none belong:\n%s", sh.name, sc)
			}
		}()
	}
	if len(missing) > 0 { // the other shells were tested
		t.Skip(strings.Join(missing, "; "))
	}
}
