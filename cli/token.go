// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// TokenCommandInput is what "llmkey token list|revoke|prune" was asked
// to do.
type TokenCommandInput struct {
	Paths  state.Paths
	Action string // list, revoke, prune
	ID     string // revoke's
	JSON   bool
	DryRun bool // prune's
}

func ConfigureTokenCommand(app *ucli.App) {
	jsonFlag := &ucli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "token",
		Usage: "list, revoke or prune the scoped tokens exec and env obtained for --key, --tag and --label",
		Description: "A scoped token serves only the keys of its selection, and its requests count under its label. " +
			"The daemon keeps them (by hash, never the tokens themselves) across restarts. exec's token ends when the command " +
			"exec ran has exited (exec becomes it, under the same pid); env's, which has no such process, 7 days after it was " +
			"issued; either, with --expires DUR, after DUR instead. A token that ended, expired or was revoked is refused " +
			"(401 bad-token); the unscoped token keeps working. The daemon removes such tokens when it issues one and when it " +
			"starts; prune removes them now.",
		Subcommands: []*ucli.Command{
			{Name: "list", Usage: "list the scoped tokens: live, expired, ended (its process has exited) or revoked",
				Flags: []ucli.Flag{jsonFlag}, Action: tokenAction("list", 0)},
			{Name: "revoke", Usage: "refuse the scoped token of that id from now on", ArgsUsage: "ID",
				Description: "ID is the id 'llmkey token list' shows, or its first six characters or more. The token is refused at once; " +
					"should the daemon be unable to write that to the state dir, revoke says so and exits 1: the token stays " +
					"refused, and the daemon writes the revoke once it can, but a restart before then would undo it.",
				Flags: []ucli.Flag{jsonFlag}, Action: tokenAction("revoke", 1)},
			{Name: "prune", Usage: "remove the scoped tokens that expired, ended or were revoked, and say how many",
				Flags:  []ucli.Flag{&ucli.BoolFlag{Name: "dry-run", Usage: "only say which it would remove"}, jsonFlag},
				Action: tokenAction("prune", 0)},
		},
	})
}

func tokenAction(what string, nargs int) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		if err := wantArgs(c, nargs, nargs); err != nil {
			return err
		}
		p, err := resolvePaths(c)
		if err != nil {
			return err
		}
		in := TokenCommandInput{Paths: p, Action: what, ID: c.Args().First(), JSON: c.Bool("json"), DryRun: c.Bool("dry-run")}
		return TokenCommand(c.Context, in, streams(c))
	}
}

// TokenCommand lists, revokes or prunes scoped tokens; it never starts
// the daemon.
func TokenCommand(ctx context.Context, in TokenCommandInput, s Streams) error {
	client := control.NewClient(in.Paths)
	var err error
	switch in.Action {
	case "list":
		err = listTokens(ctx, client, in, s)
	case "revoke":
		var ch *control.TokenChange
		if ch, err = client.RevokeToken(ctx, in.ID); err == nil {
			err = tokensChanged(ch, in, s)
		}
	case "prune":
		var ch *control.TokenChange
		if ch, err = client.PruneTokens(ctx, in.DryRun); err == nil {
			err = tokensChanged(ch, in, s)
		}
	default:
		return usageError("llmkey token list, revoke ID or prune", "unknown token action %q", in.Action)
	}
	if errors.Is(err, control.ErrNotRunning) {
		return notRunningError()
	}
	return err
}

func listTokens(ctx context.Context, client *control.Client, in TokenCommandInput, s Streams) error {
	list, err := client.Tokens(ctx)
	if err != nil {
		return err
	}
	if in.JSON {
		return writeJSONTo(s.Out, list)
	}
	if len(list) == 0 {
		s.info("no scoped tokens (exec or env with --key, --tag or --label makes one)")
		return nil
	}
	tw := tabwriter.NewWriter(s.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLABEL\tKEYS\tSTATE\tCREATED\tENDS")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, orDash(termSafe(t.Label)), strings.Join(t.Keys, ","), t.State,
			t.Created.Local().Format("2006-01-02 15:04"), tokenEnds(t))
	}
	return tw.Flush()
}

// tokenEnds says what ends a token: its process or its expiry.
func tokenEnds(t control.TokenInfo) string {
	switch {
	case t.Revoked != nil:
		return "revoked " + t.Revoked.Local().Format("2006-01-02 15:04")
	case t.Expires != nil:
		return t.Expires.Local().Format("2006-01-02 15:04")
	case t.PID != 0:
		return fmt.Sprintf("with pid %d", t.PID)
	}
	return "-"
}

// tokensChanged reports a revoke or a prune; one the daemon could not
// write to disk is a failure, with what that means and the fix.
func tokensChanged(ch *control.TokenChange, in TokenCommandInput, s Streams) error {
	what := fmt.Sprintf("removed %s", countTokens(ch.Tokens))
	switch {
	case in.Action == "revoke":
		what = "revoked the scoped token " + ch.Tokens[0].ID
	case in.DryRun:
		what = fmt.Sprintf("would remove %s", countTokens(ch.Tokens))
	}
	if in.JSON {
		if err := writeJSONTo(s.Out, ch); err != nil {
			return err
		}
	} else if ch.Persisted {
		s.done("%s", what)
	}
	if ch.Persisted {
		return nil
	}
	return &Error{Err: fmt.Errorf("%s until the daemon restarts: could not write it to %s (%s)", what, ch.Path, ch.Error),
		Hint: fmt.Sprintf("make %s writable again, or move what is in the way of %s: the daemon writes it as soon as it can "+
			"('llmkey status' says when the state is written again); a restart before then undoes it", filepath.Dir(ch.Path), filepath.Base(ch.Path)),
		Code: ExitFailure}
}

// countTokens is "3 scoped tokens (2 ended, 1 revoked)".
func countTokens(list []control.TokenInfo) string {
	by := map[control.TokenState]int{}
	for _, t := range list {
		by[t.State]++
	}
	var parts []string
	for _, st := range []control.TokenState{control.TokenExpired, control.TokenEnded, control.TokenRevoked} {
		if by[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", by[st], st))
		}
	}
	noun := "scoped tokens"
	if len(list) == 1 {
		noun = "scoped token"
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", len(list), noun)
	}
	return fmt.Sprintf("%d %s (%s)", len(list), noun, strings.Join(parts, ", "))
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
