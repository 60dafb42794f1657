// SPDX-License-Identifier: MIT

package cli

import (
	"fmt"
	"io"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// The scripts ask llmkey itself for candidates (see complete.go), so key
// names complete from the keyfile; they never eval the command line.
const bashCompletion = `# bash completion for llmkey; load with: source <(llmkey completion bash)
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

const zshCompletion = `#compdef llmkey
# zsh completion for llmkey; load with: source <(llmkey completion zsh)
# (after compinit), or save it as _llmkey in a directory of $fpath.
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
compdef _llmkey llmkey
`

const fishCompletion = `# fish completion for llmkey; save with:
#   llmkey completion fish > ~/.config/fish/completions/llmkey.fish
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

func ConfigureCompletionCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "bash: source <(llmkey completion bash); zsh: source <(llmkey completion zsh); " +
			"fish: llmkey completion fish > ~/.config/fish/completions/llmkey.fish",
		BashComplete: func(c *ucli.Context) {
			for _, s := range []string{"bash", "zsh", "fish"} {
				fmt.Fprintln(c.App.Writer, s)
			}
		},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 1, 1); err != nil {
				return err
			}
			switch sh := c.Args().First(); sh {
			case "bash":
				fmt.Fprint(c.App.Writer, bashCompletion)
			case "zsh":
				fmt.Fprint(c.App.Writer, zshCompletion)
			case "fish":
				io.WriteString(c.App.Writer, fishCompletion)
			default:
				return usageError("choose bash, zsh or fish", "no completion for shell %q", sh)
			}
			return nil
		},
	})
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
