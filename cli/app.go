// SPDX-License-Identifier: MIT

package cli

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// NewApp builds the whole command tree. main.go runs it; the man page and
// completions are generated from it.
func NewApp() *ucli.App {
	app := &ucli.App{
		Name:                 "llmkey",
		Usage:                "keep several LLM API keys per provider and rotate them behind a local proxy",
		UsageText:            "llmkey [--keyfile FILE] COMMAND [OPTIONS] [ARGS]",
		Version:              Version,
		EnableBashCompletion: true,
		Suggest:              true,
		Flags:                []ucli.Flag{keyfileFlag([]string{"LLMKEY_KEYFILE"}), noColorFlag()},
		ExitErrHandler:       func(*ucli.Context, error) {}, // main maps errors to exit codes
		OnUsageError:         onUsageError,
		CommandNotFound:      commandNotFound,
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return unknownCommand(c.App, nil, c.Args().First())
			}
			return ucli.ShowAppHelp(c)
		},
		Description: "llmkey keeps your LLM API keys (several per provider: work, personal, free tier) " +
			"in a TOML keyfile that only you can read. A user-level daemon, started on demand, serves a localhost " +
			"reverse proxy for OpenAI, Anthropic, Gemini and OpenAI-compatible providers and picks a key for every " +
			"request; 'llmkey exec -- TOOL' points a tool at the proxy with a local token in place of the key, so the " +
			"real keys never leave llmkey.",
	}
	ConfigureAddCommand(app)
	ConfigureListCommand(app)
	ConfigureRmCommand(app)
	ConfigureRenameCommand(app)
	ConfigureExecCommands(app)
	ConfigureStatusCommand(app)
	ConfigureUsageCommand(app)
	ConfigureKeyStateCommands(app)
	ConfigureDaemonCommands(app)
	ConfigureSetupCommand(app)
	ConfigureTokenCommand(app)
	ConfigureTestCommand(app)
	ConfigureSetCommand(app)
	ConfigureImportCommand(app)
	ConfigureDoctorCommand(app)
	ConfigureLogsCommand(app)
	ConfigureManCommand(app)
	ConfigureTopCommand(app)
	ConfigureServiceCommand(app)
	ConfigureDemoCommand(app)
	ConfigureCompletionCommand(app)
	configureCompleteCommand(app)
	ConfigureVersionCommand(app)
	for _, c := range app.Commands {
		for _, c := range append([]*ucli.Command{c}, c.Subcommands...) {
			if c.OnUsageError == nil {
				c.OnUsageError = onUsageError
			}
			c.Flags = append(c.Flags, keyfileFlag(nil))
		}
	}
	return app
}

// keyfileFlag is global and repeated on every command, so that it may be
// given before or after the command name. Only the global one reads the
// environment; see keyfileArg for the order.
func keyfileFlag(env []string) ucli.Flag {
	return &ucli.StringFlag{
		Name:    "keyfile",
		Usage:   "use `FILE` as the keyfile (default: $XDG_CONFIG_HOME/llmkey/keys.toml)",
		EnvVars: env,
	}
}

// keyfileArg is --keyfile after the command, else before it, else
// LLMKEY_KEYFILE (read by the global flag), else "".
func keyfileArg(c *ucli.Context) string {
	for _, ctx := range c.Lineage() {
		if v := ctx.String("keyfile"); v != "" {
			return v
		}
	}
	return ""
}

// commandNotFound is where urfave/cli sends a word it took for the name
// of a command to show the help of: "llmkey help nosuch", "llmkey token
// nosuch", and the argument before a help flag ("llmkey rm openai/a
// --help", "llmkey token revoke ID --help"). For a command that has no
// subcommands, that word is an argument: its help is what was asked for.
func commandNotFound(c *ucli.Context, name string) {
	if cmd := c.Command; cmd != nil && cmd.HelpName != c.App.HelpName && !hasSubcommands(cmd) {
		ucli.HelpPrinter(c.App.Writer, ucli.CommandHelpTemplate, cmd)
		return
	}
	PrintError(c.App.ErrWriter, unknownCommand(c.App, c.Command, name))
	os.Exit(ExitUsage)
}

// hasSubcommands: more than the "help" urfave/cli gives every command.
func hasSubcommands(cmd *ucli.Command) bool {
	for _, s := range cmd.Subcommands {
		if !s.HasName("help") {
			return true
		}
	}
	return false
}

// destructive are the commands that take something away for good: a
// mistyped word is never steered to one.
var destructive = map[string]bool{"llmkey rm": true, "llmkey token revoke": true, "llmkey service uninstall": true}

// unknownCommand refuses a command name llmkey does not have (under
// parent, for a command with subcommands; nil: the top level), with the
// closest one it does, or the command that has it as a subcommand.
func unknownCommand(app *ucli.App, parent *ucli.Command, name string) error {
	if state.LooksLikeSecret(name) {
		return usageError("'llmkey help' lists the commands; clear the secret from your shell history", "unknown command (not repeated: it looks like a secret)")
	}
	path, list, cmds := "llmkey", "'llmkey help' lists the commands", app.Commands
	if parent != nil && parent.HelpName != app.HelpName {
		path, cmds = parent.HelpName, parent.Subcommands
	}
	var names, exact []string
	for _, c := range cmds {
		if c.Hidden || c.HasName("help") {
			continue
		}
		if !destructive[path+" "+c.Name] {
			names = append(names, c.Names()...)
		}
		for _, sub := range c.Subcommands {
			if sub.HasName(name) {
				exact = append(exact, path+" "+c.Name+" "+sub.Name)
			}
		}
	}
	if path != "llmkey" {
		list = fmt.Sprintf("'%s' has %s", path, strings.Join(subcommandNames(cmds), ", "))
	}
	if s, ok := synonyms[name]; ok && path == "llmkey" {
		return usageError(fmt.Sprintf("did you mean 'llmkey %s'? (%s)", s, list), "unknown command %q", name)
	}
	switch s := state.Closest(name, names); {
	case len(exact) == 1:
		return usageError(fmt.Sprintf("did you mean '%s'? (%s)", exact[0], list), "unknown command %q", name)
	case s != "":
		return usageError(fmt.Sprintf("did you mean '%s %s'? (%s)", path, s, list), "unknown command %q", name)
	}
	return usageError(list, "unknown command %q", name)
}

// synonyms are the words other tools use for a command llmkey names
// otherwise: suggested for their meaning, which their spelling does not
// give away. None of them leads to a command that destroys anything.
var synonyms = map[string]string{"mv": "rename", "move": "rename", "ren": "rename"}

func subcommandNames(cmds []*ucli.Command) []string {
	var out []string
	for _, c := range cmds {
		if !c.Hidden && !c.HasName("help") {
			out = append(out, c.Name)
		}
	}
	return out
}

var flagValueErr = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^invalid value "(.*)" for flag -+([\w-]+): (.*)$`) })

func onUsageError(c *ucli.Context, err error, _ bool) error {
	topic := "llmkey help"
	var flags []ucli.Flag
	if c.Command != nil && c.Command.Name != "" {
		topic += " " + c.Command.Name
		if isSubcommand(c) {
			topic = c.Command.HelpName + " --help"
		}
		flags = c.Command.Flags
	} else {
		flags = c.App.Flags
	}
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var known []string
		for _, f := range flags {
			known = append(known, f.Names()...)
		}
		dash := func(n string) string {
			if len(n) > 1 {
				return "--" + n
			}
			return "-" + n
		}
		if s := state.Closest(name, known); s != "" {
			return usageError(fmt.Sprintf("did you mean %s? ('%s' lists the options)", dash(s), topic), "unknown option %s", dash(name))
		}
		return usageError("'"+topic+"' lists the options", "unknown option %s", dash(name))
	}
	if m := flagValueErr().FindStringSubmatch(err.Error()); m != nil {
		what := "a whole number, e.g. --" + m[2] + " 60"
		if strings.Contains(m[3], "duration") || strings.Contains(m[3], "time") {
			what = "a duration, e.g. --" + m[2] + " 30m (s, m, h, d)"
		}
		return usageError("'"+topic+"' lists the options", "--%s takes %s, not %q", m[2], what, m[1])
	}
	return usageError("'"+topic+"' lists the options", "%v", err)
}

// resolvePaths applies the keyfile flag and the environment.
func resolvePaths(c *ucli.Context) (state.Paths, error) {
	p, err := state.ResolvePaths(os.Getenv, keyfileArg(c))
	if err != nil {
		return p, fail("set HOME, or the LLMKEY_* variables in 'llmkey man'", "%v", err)
	}
	return p, nil
}

// wantArgs checks the number of positional arguments.
func wantArgs(c *ucli.Context, min, max int) error {
	n := c.Args().Len()
	if n >= min && n <= max {
		return nil
	}
	name := c.Command.Name
	if isSubcommand(c) {
		name = strings.TrimPrefix(c.Command.HelpName, c.App.HelpName+" ")
	}
	hint := strings.TrimSpace(fmt.Sprintf("usage: llmkey %s %s", name, c.Command.ArgsUsage))
	if n < min {
		return usageError(hint, "%s: missing argument", name)
	}
	// The extra arguments are not repeated: one of them may be a secret
	// pasted where it does not belong.
	return usageError(hint, "%s: too many arguments (%d given, at most %d)", name, n, max)
}

// isSubcommand: c runs a command under another one ("token list").
func isSubcommand(c *ucli.Context) bool {
	return c.Command != nil && strings.Count(c.Command.HelpName, " ") > 1
}

// Streams are what a command reads and writes: the process's own, or a
// test's. In is where secrets and answers are read (a terminal or a
// pipe); Out takes results, Err messages and prompts.
type Streams struct {
	In       *os.File
	Out, Err io.Writer
	// Look is how tables on Out are shown: fitted and coloured on a
	// terminal, whole and plain otherwise.
	Look look
}

// streams are the command line's streams.
func streams(c *ucli.Context) Streams {
	return Streams{In: os.Stdin, Out: c.App.Writer, Err: c.App.ErrWriter,
		Look: lookOf(c.App.Writer, c.Bool("wide"), c.Bool("no-color"))}
}

// tableFlags are the options of a command that prints a table.
func tableFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.BoolFlag{Name: "wide", Usage: "on a terminal, print every column whole, however wide"},
		noColorFlag(),
	}
}

func noColorFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "no-color", Usage: "no colours, even on a terminal (as does NO_COLOR)"}
}

// done says on stderr that a command did what was asked. Unlike info and
// errors it has no "llmkey:" prefix, so that a success does not read as
// a complaint (as gh and git print theirs).
func (s Streams) done(format string, args ...any) {
	fmt.Fprintf(s.Err, format+"\n", args...)
}

// info prints a message of llmkey's own to stderr.
func (s Streams) info(format string, args ...any) {
	fmt.Fprintf(s.Err, "llmkey: "+format+"\n", args...)
}

// withPaths is the action of a command that takes no arguments: it
// refuses any, resolves the paths, and runs fn.
func withPaths(fn func(c *ucli.Context, p state.Paths) error) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		if err := wantArgs(c, 0, 0); err != nil {
			return err
		}
		p, err := resolvePaths(c)
		if err != nil {
			return err
		}
		return fn(c, p)
	}
}
