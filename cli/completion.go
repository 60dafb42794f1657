package cli

import (
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// The bash and zsh scripts ask llmkey itself for candidates (urfave/cli's
// --generate-bash-completion), so key names complete from the keyfile.
// Unlike urfave's stock script they never eval the command line.
const bashCompletion = `# bash completion for llmkey; load with: source <(llmkey completion bash)
_llmkey() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local -a args=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
  [[ "$cur" == -* ]] && args+=("$cur")
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$(llmkey "${args[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o default -F _llmkey llmkey
`

const zshCompletion = `#compdef llmkey
# zsh completion for llmkey; load with: source <(llmkey completion zsh)
_llmkey() {
  local cur=${words[CURRENT]}
  local -a args opts
  args=("${(@)words[2,CURRENT-1]}")
  [[ $cur == -* ]] && args+=("$cur")
  opts=("${(@f)$(llmkey "${args[@]}" --generate-bash-completion 2>/dev/null)}")
  compadd -a opts
}
compdef _llmkey llmkey
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
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("generate fish completion: %w", err)
				}
				fmt.Fprint(c.App.Writer, s)
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
