// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// RmCommandInput is what "llmkey rm" was asked to do.
type RmCommandInput struct {
	Keyfile  string
	Provider string
	Name     string
	Force    bool
}

func ConfigureRmCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "rm",
		Aliases:   []string{"remove"},
		Usage:     "remove a key from the keyfile",
		ArgsUsage: "PROVIDER/NAME",
		Description: "Asks for confirmation on a terminal; scripts pass --force. Removes the key's [[key]] block, " +
			"the comment lines directly above it and one blank line; nothing else in the file changes.",
		Flags:        []ucli.Flag{&ucli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "remove without asking"}},
		BashComplete: completeKeyRefs,
		Action: func(c *ucli.Context) error {
			provider, name, p, err := keyRefArgs(c)
			if err != nil {
				return err
			}
			return RmCommand(c.Context, RmCommandInput{Keyfile: p.Keyfile, Provider: provider, Name: name, Force: c.Bool("force")}, streams(c))
		},
	})
}

// RmCommand removes one key, after confirmation unless forced.
func RmCommand(ctx context.Context, in RmCommandInput, s Streams) error {
	ref := in.Provider + "/" + in.Name
	k, err := state.RemoveKey(in.Keyfile, in.Provider, in.Name, func(k state.Key) error {
		if in.Force {
			return nil
		}
		if !isTerminal(s.In) {
			return usageError("pass --force to remove without asking: llmkey rm --force "+ref,
				"not removing %s without confirmation (standard input is not a terminal)", ref)
		}
		ok, err := confirm(s.In, s.Err, fmt.Sprintf("remove %s (%s) from %s?", ref, state.Mask(k.Secret), in.Keyfile))
		if err != nil {
			return err
		}
		if !ok {
			return fail("", "not removed")
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.done("removed %s (%s) from %s", ref, state.Mask(k.Secret), in.Keyfile)
	return nil
}

// keyRefArgs reads the key argument of rm, set, enable, disable and
// reset, written PROVIDER/NAME or PROVIDER NAME, and the paths it refers
// to.
func keyRefArgs(c *ucli.Context) (provider, name string, p state.Paths, err error) {
	if err = wantArgs(c, 1, 2); err != nil {
		return
	}
	ref := c.Args().First()
	if c.NArg() == 2 {
		ref += "/" + c.Args().Get(1)
	}
	if provider, name, err = parseRef(ref); err != nil {
		return
	}
	p, err = resolvePaths(c)
	return
}

// parseRef splits PROVIDER/NAME.
func parseRef(s string) (provider, name string, err error) {
	provider, name, ok := strings.Cut(s, "/")
	if !ok || provider == "" || name == "" || strings.Contains(name, "/") {
		return "", "", usageError("name a key as PROVIDER/NAME, e.g. openai/work ('llmkey list' shows them)", "%q is not PROVIDER/NAME", s)
	}
	return provider, name, nil
}
