// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// TokenCommandInput is what "llmkey token list|revoke" was asked to do.
type TokenCommandInput struct {
	Paths  state.Paths
	Action string // list, revoke
	ID     string // revoke's
	JSON   bool
}

func ConfigureTokenCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "token",
		Usage:     "list or revoke the scoped tokens exec --key, --tag and --label obtained",
		ArgsUsage: "list | revoke ID",
		Description: "A scoped token serves only the keys of its selection, and its requests count under its label. " +
			"The daemon keeps them (by hash, never the tokens themselves) across restarts until revoked or expired. " +
			"A revoked token is answered 401 bad-token; the unscoped token keeps working.",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 1, 2); err != nil {
				return err
			}
			p, err := resolvePaths(c)
			if err != nil {
				return err
			}
			in := TokenCommandInput{Paths: p, Action: c.Args().Get(0), ID: c.Args().Get(1), JSON: c.Bool("json")}
			return TokenCommand(c.Context, in, streams(c))
		},
	})
}

// TokenCommand lists or revokes scoped tokens; it never starts the daemon.
func TokenCommand(ctx context.Context, in TokenCommandInput, s Streams) error {
	client := control.NewClient(in.Paths)
	switch in.Action {
	case "list":
		list, err := client.Tokens(ctx)
		if errors.Is(err, control.ErrNotRunning) {
			return notRunningError()
		} else if err != nil {
			return err
		}
		if in.JSON {
			enc := json.NewEncoder(s.Out)
			enc.SetIndent("", "  ")
			return enc.Encode(list)
		}
		if len(list) == 0 {
			s.info("no scoped tokens (exec --key, --tag or --label makes one)")
			return nil
		}
		tw := tabwriter.NewWriter(s.Out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tLABEL\tKEYS\tCREATED\tEXPIRES")
		for _, t := range list {
			exp := "-"
			if t.Expires != nil {
				exp = t.Expires.Local().Format("2006-01-02 15:04")
				if t.Expired {
					exp += " (expired)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, orDash(termSafe(t.Label)), strings.Join(t.Keys, ","), t.Created.Local().Format("2006-01-02 15:04"), exp)
		}
		return tw.Flush()
	case "revoke":
		if in.ID == "" {
			return usageError("usage: llmkey token revoke ID ('llmkey token list' shows the ids)", "token revoke: missing the token's id")
		}
		err := client.RevokeToken(ctx, in.ID)
		if errors.Is(err, control.ErrNotRunning) {
			return notRunningError()
		} else if err != nil {
			return err
		}
		s.done("revoked the scoped token %s", in.ID)
		return nil
	}
	return usageError("llmkey token list, or llmkey token revoke ID", "unknown token action %q", in.Action)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
