// SPDX-License-Identifier: MIT

package cli

import (
	"fmt"
	"os"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// Completion is one engine for the three shells: their scripts call the
// hidden "llmkey __complete WORD... CURRENT" (CURRENT is the word under
// the cursor, maybe empty), and print what it prints, one candidate per
// line. It knows the command tree (commands, their options and the
// values of those options) and reads key names, providers and tags from
// the keyfile; it never starts the daemon, and never evaluates the
// command line. A candidate ":files" asks the shell for file names.

// completeFiles is the line that asks the shell to complete file names.
const completeFiles = ":files"

// flagValues are the values an option takes, where they are a few words.
var flagValues = map[string]func(*state.Config) []string{
	"by":      func(*state.Config) []string { return usageDims },
	"shell":   func(*state.Config) []string { return []string{"sh", "bash", "zsh", "fish", "json"} },
	"since":   func(*state.Config) []string { return []string{"today", "yesterday", "7d", "30d"} },
	"for":     func(*state.Config) []string { return []string{"30m", "1h", "2h", "1d"} },
	"expires": func(*state.Config) []string { return []string{"1h", "8h", "1d", "7d"} },
	"key":     keyRefs,
	"tag":     tags,
	"group":   groups,
	"keyfile": nil, // files
}

// positional says what a command's arguments are.
var positional = map[string]func(*state.Config) []string{
	"add":        providers,
	"rm":         keyRefs,
	"rename":     keyRefs,
	"enable":     keyRefs,
	"disable":    keyRefs,
	"reset":      keyRefs,
	"set":        keyRefs,
	"test":       keyRefs,
	"setup":      func(*state.Config) []string { return toolNames() },
	"completion": func(*state.Config) []string { return []string{"bash", "zsh", "fish"} },
	"token":      func(*state.Config) []string { return []string{"list", "revoke", "prune"} },
	"service":    func(*state.Config) []string { return []string{"install", "uninstall", "status"} },
}

func keyRefs(cfg *state.Config) []string {
	var out []string
	if cfg != nil {
		for _, k := range cfg.Keys {
			out = append(out, k.Ref())
		}
	}
	return out
}

func tags(cfg *state.Config) []string {
	var out []string
	if cfg != nil {
		for _, k := range cfg.Keys {
			for _, t := range k.Tags {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

// groups are the key groups the keyfile names.
func groups(cfg *state.Config) []string {
	var out []string
	if cfg != nil {
		for _, k := range cfg.Keys {
			if k.Group != "" && !slices.Contains(out, k.Group) {
				out = append(out, k.Group)
			}
		}
	}
	return out
}

func providers(cfg *state.Config) []string {
	names := state.BuiltinNames()
	if cfg != nil {
		for n := range cfg.Providers {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// Complete is the candidates for the last of words (the word under the
// cursor) after the others, the command line without "llmkey".
func Complete(app *ucli.App, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	l, ok := readWords(app, before)
	switch {
	case !ok:
		return nil
	case l.command:
		return []string{completeFiles}
	}
	cfg := completionConfig(l.keyfile)

	// The value of an option: "--by <TAB>", "--by=mo<TAB>".
	if n := len(before); n > 0 && strings.HasPrefix(before[n-1], "--") && !strings.Contains(before[n-1], "=") && takesValue(l.flags, before[n-1]) {
		return optionValues(strings.TrimLeft(before[n-1], "-"), cur, "", cfg)
	}
	if strings.HasPrefix(cur, "--") && strings.Contains(cur, "=") {
		name, value, _ := strings.Cut(strings.TrimLeft(cur, "-"), "=")
		return optionValues(name, value, "--"+name+"=", cfg)
	}
	if strings.HasPrefix(cur, "-") {
		var out []string
		for _, f := range l.flags {
			for _, n := range f.Names() {
				if len(n) > 1 && (l.cmd == nil || n != "version") {
					out = append(out, "--"+n)
				}
			}
		}
		out = append(out, "--help")
		return withPrefix(out, cur)
	}
	return arguments(app, l, cur, cfg)
}

// completedWords is what the words before the cursor say.
type completedWords struct {
	cmd     *ucli.Command // nil: no command yet
	flags   []ucli.Flag   // the command's options and the global ones
	keyfile string        // --keyfile's value, if given
	nargs   int           // the command's arguments
	command bool          // after exec's "--": the command to run
}

// readWords reads the words before the cursor; not ok when they name a
// command llmkey does not have.
func readWords(app *ucli.App, before []string) (l completedWords, ok bool) {
	l.flags = app.Flags
	for i := 0; i < len(before); i++ {
		w := before[i]
		if w == "--" {
			if l.cmd != nil && (l.cmd.Name == "exec") {
				l.command = true
				return l, true
			}
			continue
		}
		if strings.HasPrefix(w, "-") && w != "-" {
			name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if takesValue(l.flags, "--"+name) && !hasValue && i+1 < len(before) {
				i++
				value = before[i]
			}
			if name == "keyfile" {
				l.keyfile = value
			}
			continue
		}
		if l.cmd == nil {
			if l.cmd = app.Command(w); l.cmd == nil {
				return l, false
			}
			l.flags = append(append([]ucli.Flag{}, l.cmd.Flags...), app.Flags...)
			continue
		}
		l.nargs++
	}
	return l, true
}

// arguments completes a word that is not an option: a command's name, or
// its first argument.
func arguments(app *ucli.App, l completedWords, cur string, cfg *state.Config) []string {
	if l.cmd == nil {
		var out []string
		for _, c := range app.VisibleCommands() {
			out = append(out, c.Name)
		}
		return withPrefix(out, cur)
	}
	if l.cmd.Name == "help" && l.nargs == 0 {
		return Complete(app, []string{cur})
	}
	if l.cmd.Name == "exec" {
		return []string{completeFiles}
	}
	if fn, ok := positional[l.cmd.Name]; ok && l.nargs == 0 {
		return withPrefix(fn(cfg), cur)
	}
	return nil
}

// optionValues completes the value of option name; for --by, the part
// after the last comma.
func optionValues(name, cur, prefix string, cfg *state.Config) []string {
	fn, ok := flagValues[name]
	if !ok {
		return nil
	}
	if fn == nil {
		return []string{completeFiles}
	}
	head := ""
	if name == "by" {
		if i := strings.LastIndex(cur, ","); i >= 0 {
			head, cur = cur[:i+1], cur[i+1:]
		}
	}
	var out []string
	for _, v := range withPrefix(fn(cfg), cur) {
		out = append(out, prefix+head+v)
	}
	return out
}

func withPrefix(all []string, prefix string) []string {
	var out []string
	for _, s := range all {
		if strings.HasPrefix(s, prefix) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// completionConfig is the keyfile as written, or nil: completion must
// work on a keyfile with a mistake in it, and say nothing about it.
func completionConfig(keyfile string) *state.Config {
	p, err := state.ResolvePaths(os.Getenv, keyfile)
	if err != nil {
		return nil
	}
	cfg, _ := state.LoadAsWritten(p.Keyfile)
	return cfg
}

func configureCompleteCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		Usage:           "the candidates for the last word, for the completion scripts",
		Action: func(c *ucli.Context) error {
			words := c.Args().Slice()
			if len(words) > 0 && words[0] == "--" {
				words = words[1:]
			}
			for _, s := range Complete(c.App, words) {
				fmt.Fprintln(c.App.Writer, s)
			}
			return nil
		},
	})
}
