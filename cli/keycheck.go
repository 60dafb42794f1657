// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/secrets"
	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// TestCommandInput is what "llmkey test" was asked to do.
type TestCommandInput struct {
	Paths    state.Paths
	Provider string // empty: every key
	Name     string // empty: every key of Provider
	JSON     bool
}

// keyVerdict is what one cheap call said of a key.
type keyVerdict struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
	Result   string `json:"result"` // valid, invalid, out-of-quota, rate-limited, unreachable, error
	Detail   string `json:"detail,omitempty"`
	// DaemonState is the key's state in the running daemon after it
	// was told what the check found, when that changed it (was: before).
	DaemonState string `json:"daemon_state,omitempty"`
	was         string
	code        int
	check       *control.KeyCheck // what to tell the daemon; nil: nothing
}

func ConfigureTestCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "test",
		Usage:     "make one cheap call with a key (or each) and say whether it works",
		ArgsUsage: "[PROVIDER[/NAME]]",
		Description: "Lists the provider's models with exactly that key, straight from this command (not through the daemon, " +
			"so no other key stands in), and says valid, invalid, out of quota, rate limited or unreachable. A daemon running on " +
			"this keyfile is told what each check found and acts on it at once (an invalid or spent key is parked, a rate " +
			"limited one cools, a parked one found valid serves again); none is started. Exit 0 when every " +
			"key tested is valid; else the worst: 10 invalid, 11 out of quota, 12 rate limited, 13 unreachable.",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 0, 2); err != nil {
				return err
			}
			p, err := resolvePaths(c)
			if err != nil {
				return err
			}
			in := TestCommandInput{Paths: p, JSON: c.Bool("json")}
			if c.NArg() == 2 {
				in.Provider, in.Name = c.Args().Get(0), c.Args().Get(1)
			} else if c.NArg() == 1 {
				in.Provider, in.Name, _ = strings.Cut(c.Args().First(), "/")
			}
			return TestCommand(c.Context, in, streams(c))
		},
	})
}

// TestCommand checks the keys chosen, one call each, and tells the
// running daemon what it found.
func TestCommand(ctx context.Context, in TestCommandInput, s Streams) error {
	cfg, err := state.Load(in.Paths.Keyfile)
	if err != nil {
		return err
	}
	out := checkKeys(ctx, cfg, in)
	if len(out) == 0 {
		return fail("'llmkey list' shows the keys", "no key matches %s", strings.TrimSuffix(in.Provider+"/"+in.Name, "/"))
	}
	tellDaemon(ctx, in.Paths, out)
	worst := ExitOK
	for _, v := range out {
		worst = max(worst, v.code)
	}
	if in.JSON {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		tw := tabwriter.NewWriter(s.Out, 0, 0, 2, ' ', 0)
		for _, v := range out {
			detail := v.Detail
			if v.DaemonState != "" {
				detail = strings.TrimPrefix(detail+"; ", "; ") + fmt.Sprintf("the daemon has it %s now (was %s)", v.DaemonState, v.was)
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\n", v.Provider, v.Name, v.Result, termSafe(detail))
		}
		tw.Flush()
	}
	if worst != ExitOK {
		return &Error{Err: errSilent, Code: worst}
	}
	return nil
}

// checkKeys checks each key of cfg that in names.
func checkKeys(ctx context.Context, cfg *state.Config, in TestCommandInput) []keyVerdict {
	var known []string // a failing secret_cmd's message shows none of them
	for _, k := range cfg.Keys {
		if k.Secret != "" {
			known = append(known, k.Secret)
		}
	}
	var out []keyVerdict
	for _, k := range cfg.Keys {
		if (in.Provider != "" && k.Provider != in.Provider) || (in.Name != "" && k.Name != in.Name) {
			continue
		}
		p, _ := cfg.Provider(k.Provider)
		secret, err := secrets.Read(ctx, k, known...)
		if err != nil {
			out = append(out, keyVerdict{Provider: k.Provider, Name: k.Name, Result: "unreadable", Detail: err.Error(), code: ExitFailure})
			continue
		}
		k.Secret = secret
		out = append(out, checkKey(ctx, p, k))
	}
	return out
}

// tellDaemon tells the daemon that serves this keyfile, if one runs
// (none is started), what each check found, so that it acts on it now:
// a key found invalid or spent is parked before a tool's request meets
// it, a parked one found valid serves again. Each verdict notes what
// changed there.
func tellDaemon(ctx context.Context, p state.Paths, out []keyVerdict) {
	c := control.NewClient(p)
	st, err := c.Status(ctx)
	if err != nil || st.Keyfile == nil || !samePath(st.Keyfile.Path, p.Keyfile) {
		return
	}
	for i := range out {
		v := &out[i]
		if v.check == nil {
			continue
		}
		before := keyState(st, v.Provider, v.Name)
		if ks, err := c.KeyChecked(ctx, v.Provider, v.Name, *v.check); err == nil && before != "" && ks.State != before {
			v.DaemonState, v.was = ks.State, before
		}
	}
}

// checkKey lists p's models with k, and says what the answer means.
func checkKey(ctx context.Context, p state.Provider, k state.Key) keyVerdict {
	v := keyVerdict{Provider: k.Provider, Name: k.Name}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := wire.ProbeRequest(p.Kind, p.BaseURL, k.Secret)
	if err != nil {
		v.Result, v.Detail, v.code = "unreachable", redactSecret(err.Error(), k.Secret), ExitKeyUnreachable
		return v
	}
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		v.Result, v.Detail, v.code = "unreachable", redactSecret(err.Error(), k.Secret), ExitKeyUnreachable
		return v
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	o := wire.Classify(p.Kind, resp.StatusCode, resp.Header, []byte(redactSecret(string(body), k.Secret)), time.Now())
	v.Detail = redactSecret(o.Reason, k.Secret)
	v.check = checkReport(o, k.Secret, v.Detail)
	switch o.Class {
	case rotate.Success:
		v.Result, v.Detail = "valid", ""
	case rotate.InvalidKey, rotate.Forbidden:
		v.Result, v.code = "invalid", ExitKeyInvalid
	case rotate.Quota:
		v.Result, v.code = "out-of-quota", ExitKeyQuota
		if !o.Until.IsZero() {
			v.Detail += "; back at " + o.Until.UTC().Format("2006-01-02 15:04 UTC")
		}
	case rotate.RateLimited:
		v.Result, v.code = "rate-limited", ExitKeyRateLimited
	case rotate.Transport, rotate.Overloaded, rotate.ServerError:
		v.Result, v.code = "unreachable", ExitKeyUnreachable
	default:
		v.Result, v.code = "error", ExitFailure
	}
	return v
}

// checkReport is what to tell the daemon of answer o to a check of
// secret: nil for the classes that say nothing of the key.
func checkReport(o rotate.Outcome, secret, reason string) *control.KeyCheck {
	switch o.Class {
	case rotate.Success, rotate.RateLimited, rotate.Quota, rotate.InvalidKey:
	default:
		return nil
	}
	chk := &control.KeyCheck{Fingerprint: state.Fingerprint(secret), Class: o.Class.String(), Status: o.Status, Reason: reason, Wait: o.Wait.Seconds()}
	if !o.Until.IsZero() {
		chk.Until = &o.Until
	}
	return chk
}

func redactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, state.Mask(secret))
}
