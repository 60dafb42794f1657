// SPDX-License-Identifier: MIT

package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// PermuteArgs moves a command's flags in front of its positional
// arguments. urfave/cli v2 stops reading flags at the first argument, so
// "llmkey rm openai/work --force" would otherwise treat --force as a
// second key. Everything after "--" and every argument of a command that
// runs another program (exec) is left exactly where it is.
func PermuteArgs(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Skip global flags to find the command.
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		if takesValue(app.Flags, args[i]) {
			i++
		}
		i++
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	// A subcommand's flags and arguments are the ones after its name.
	for cmd != nil && len(cmd.Subcommands) > 0 {
		j := i + 1
		for j < len(args) && strings.HasPrefix(args[j], "-") && args[j] != "--" {
			if takesValue(cmd.Flags, args[j]) {
				j++
			}
			j++
		}
		if j >= len(args) || cmd.Command(args[j]) == nil {
			return args
		}
		i, cmd = j, cmd.Command(args[j])
	}
	if cmd == nil || cmd.SkipFlagParsing || cmd.Name == "exec" {
		return args
	}
	head := append([]string{}, args[:i+1]...)
	var flags, pos []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			pos = append(pos, rest[j:]...)
			j = len(rest)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(append(head, flags...), pos...)
}

// takesValue reports whether arg (like "--rpm" or "-f") names a flag that
// reads the next argument as its value.
func takesValue(flags []ucli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if dg, ok := f.(ucli.DocGenerationFlag); ok {
				return dg.TakesValue()
			}
		}
	}
	return false
}
