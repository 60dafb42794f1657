// SPDX-License-Identifier: MIT

package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// The scripts ask llmkey itself for candidates (see complete.go), so key
// names complete from the keyfile; they never eval the command line.
const bashCompletion = `# bash completion for llmkey: llmkey completion bash --install puts it
# where bash-completion loads it; or load it with: source <(llmkey completion bash)
_llmkey() {
  local cur="${COMP_WORDS[COMP_CWORD]}" IFS=$'\n'
  local -a c=($(llmkey __complete -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null))
  if [[ "${c[0]}" == ":files" ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
    return
  fi
  COMPREPLY=("${c[@]}")
}
complete -F _llmkey llmkey
`

// Autoloaded from $fpath, the file is the body of _llmkey: it defines
// the function and completes at once; sourced, it registers it.
const zshCompletion = `#compdef llmkey
# zsh completion for llmkey: llmkey completion zsh --install puts it in a
# directory for $fpath; or load it with: source <(llmkey completion zsh)
# (after compinit).
_llmkey() {
  local -a c
  c=("${(@f)$(llmkey __complete -- "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
  c=(${c:#})
  if [[ "${c[1]}" == ":files" ]]; then
    _files
    return
  fi
  compadd -Q -- "${c[@]}"
}
if [[ "${funcstack[1]}" == "_llmkey" ]]; then
  _llmkey "$@"
else
  compdef _llmkey llmkey
fi
`

const fishCompletion = `# fish completion for llmkey: llmkey completion fish --install puts it
# where fish loads it; or load it with: llmkey completion fish | source
function __llmkey_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l cur (commandline -ct)
    set -l c (llmkey __complete -- $words $cur 2>/dev/null)
    if test "$c[1]" = ":files"
        __fish_complete_path $cur
        return
    end
    printf '%s\n' $c
end
complete -c llmkey -f -a '(__llmkey_complete)'
`

var completionScripts = map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}

func ConfigureCompletionCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish), or install it for you",
		ArgsUsage: "bash|zsh|fish",
		Description: "--install writes the script where the shell looks for your own completions: bash " +
			"$XDG_DATA_HOME/bash-completion/completions/llmkey (~/.local/share/..., loaded by bash-completion), zsh " +
			"$XDG_DATA_HOME/zsh/site-functions/_llmkey (add that directory to fpath in ~/.zshrc, before compinit), fish " +
			"$XDG_CONFIG_HOME/fish/completions/llmkey.fish. Without it: source <(llmkey completion bash), " +
			"source <(llmkey completion zsh) after compinit, or llmkey completion fish | source. " +
			"The packages install the scripts where each shell loads them for every user.",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "install", Usage: "write the script into your own completion directory for that shell, and say how it is loaded"}},
		BashComplete: func(c *ucli.Context) {
			for _, s := range []string{"bash", "zsh", "fish"} {
				fmt.Fprintln(c.App.Writer, s)
			}
		},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 1, 1); err != nil {
				return err
			}
			return CompletionCommand(CompletionCommandInput{Shell: c.Args().First(), Install: c.Bool("install")}, os.Getenv, streams(c))
		},
	})
}

type CompletionCommandInput struct {
	Shell   string
	Install bool
}

// CompletionCommand prints the shell's script, or installs it.
func CompletionCommand(in CompletionCommandInput, getenv func(string) string, s Streams) error {
	script, ok := completionScripts[in.Shell]
	if !ok {
		return usageError("choose bash, zsh or fish", "no completion for shell %q", in.Shell)
	}
	if !in.Install {
		_, err := io.WriteString(s.Out, script)
		return err
	}
	path, note, err := completionPath(in.Shell, getenv)
	if err != nil {
		return err
	}
	if err := writeUserFile(path, script); err != nil {
		return err
	}
	s.done("wrote %s", path)
	s.done("%s", note)
	return nil
}

// completionPath is where shell looks for a completion of the user's own,
// and what loads it from there.
func completionPath(shell string, getenv func(string) string) (path, note string, err error) {
	data, err := userDir(getenv, "XDG_DATA_HOME", ".local/share")
	if err != nil {
		return "", "", err
	}
	switch shell {
	case "bash":
		dir := filepath.Join(data, "bash-completion")
		if d := getenv("BASH_COMPLETION_USER_DIR"); filepath.IsAbs(d) {
			dir = d
		}
		return filepath.Join(dir, "completions", "llmkey"), "new bash shells load it through bash-completion (apt install bash-completion; " +
			"on macOS brew install bash-completion@2, sourced in ~/.bash_profile as brew says); without it, put source <(llmkey completion bash) in ~/.bashrc", nil
	case "zsh":
		dir := filepath.Join(data, "zsh", "site-functions")
		return filepath.Join(dir, "_llmkey"), "zsh loads it from $fpath: put this line in ~/.zshrc before compinit runs (with oh-my-zsh, before it is sourced), then start a new zsh:\n" +
			"  fpath=(" + shellQuote(dir) + " $fpath)", nil
	default:
		config, err := userDir(getenv, "XDG_CONFIG_HOME", ".config")
		if err != nil {
			return "", "", err
		}
		return filepath.Join(config, "fish", "completions", "llmkey.fish"), "new fish shells load it", nil
	}
}

// userDir is the XDG base directory env names, when it is an absolute
// path, or else dflt under the home.
func userDir(getenv func(string) string, env, dflt string) (string, error) {
	if d := getenv(env); filepath.IsAbs(d) {
		return d, nil
	}
	home := getenv("HOME")
	if !filepath.IsAbs(home) {
		return "", fail("set HOME to your home directory", "HOME is not set to an absolute path: nowhere to install")
	}
	return filepath.Join(home, filepath.FromSlash(dflt)), nil
}

// writeUserFile writes a file llmkey generates (a completion, the man
// page) into a directory of the user's, making it if need be.
func writeUserFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fail("make it a directory you can write (ls -ld it and its parents)", "create %s: %w", filepath.Dir(path), err)
	}
	if err := state.WriteAtomic(path, []byte(content), 0o644); err != nil {
		return fail("fix what the error says (space, permissions), then run the command again", "%w", err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+~") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// completeProviders offers the providers a key can be added for.
func completeProviders(c *ucli.Context) {
	if c.NArg() > 0 {
		return
	}
	names := state.BuiltinNames()
	if p, err := state.ResolvePaths(os.Getenv, keyfileArg(c)); err == nil {
		if cfg, err := state.Load(p.Keyfile); err == nil {
			for n := range cfg.Providers {
				if _, builtin := state.Builtin(n); !builtin {
					names = append(names, n)
				}
			}
		}
	}
	for _, n := range names {
		fmt.Fprintln(c.App.Writer, n)
	}
}

// completeKeyRefs offers PROVIDER/NAME of every key in the keyfile.
func completeKeyRefs(c *ucli.Context) {
	if c.NArg() > 0 {
		return
	}
	p, err := state.ResolvePaths(os.Getenv, keyfileArg(c))
	if err != nil {
		return
	}
	cfg, err := state.Load(p.Keyfile)
	if err != nil {
		return
	}
	for _, k := range cfg.Keys {
		fmt.Fprintln(c.App.Writer, k.Ref())
	}
}
