// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// KeyStateCommandInput is what "llmkey enable|disable|reset" was asked to
// do: a person overriding what the daemon learned about a key.
type KeyStateCommandInput struct {
	Paths    state.Paths
	Action   string // enable, disable, reset
	Provider string
	Name     string
	For      time.Duration // disable only; 0: until enabled
}

func configureKeyStateCommand(app *ucli.App, action, usage, desc string, flags ...ucli.Flag) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:         action,
		Usage:        usage,
		ArgsUsage:    "PROVIDER/NAME",
		Description:  desc,
		Flags:        flags,
		BashComplete: completeKeyRefs,
		Action: func(c *ucli.Context) error {
			provider, name, p, err := keyRefArgs(c)
			if err != nil {
				return err
			}
			in := KeyStateCommandInput{Paths: p, Action: action, Provider: provider, Name: name}
			if action == "disable" && c.String("for") != "" {
				d, err := state.ParseDuration(c.String("for"))
				switch {
				case err != nil || d <= 0:
					return usageError("use a positive duration, e.g. --for 2h or --for 1d", "--for %q is not a duration", c.String("for"))
				case d > control.MaxDisableFor:
					return usageError("leave --for out to disable the key until 'llmkey enable'", "--for %q is longer than %s", c.String("for"), control.MaxDisableForText)
				}
				in.For = d
			}
			return KeyStateCommand(c.Context, in, streams(c))
		},
	})
}

// KeyStateCommand applies the override in the daemon (starting it if
// needed, since that is where keys are chosen) and prints the key's state.
func KeyStateCommand(ctx context.Context, in KeyStateCommandInput, s Streams) error {
	ref := in.Provider + "/" + in.Name
	cfg, err := state.Load(in.Paths.Keyfile)
	if err != nil {
		return err
	}
	if cfg.Find(in.Provider, in.Name) < 0 {
		return cfg.KeyNotFound(in.Provider, in.Name)
	}
	if _, _, err := ensureDaemon(ctx, in.Paths); err != nil {
		return err
	}
	ks, err := control.NewClient(in.Paths).KeyAction(ctx, in.Provider, in.Name, in.Action, in.For)
	if err != nil {
		return err
	}
	switch {
	case in.Action == "disable" && in.For > 0:
		until := time.Now().Add(in.For)
		if ks.Until != nil {
			until = *ks.Until
		}
		s.done("disabled %s for %s (until %s)", ref, humanDuration(in.For), untilText(until, time.Now()))
	case in.Action == "disable":
		s.done("disabled %s until 'llmkey enable %s'", ref, ref)
	default:
		s.done("%s %s: now %s", map[string]string{"enable": "enabled", "reset": "reset"}[in.Action], ref,
			describeState(ks.State, ks.Reason, ks.CooldownSeconds))
	}
	return nil
}

// humanDuration is d as a person writes it, in the units --for takes:
// "1d", "2h30m", "1d12h", "90s" as "1m30s"; under a second as Go writes it.
func humanDuration(d time.Duration) string {
	if d < time.Second {
		return d.String()
	}
	d = d.Round(time.Second)
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}

// untilText is t in local time: the time of day when it falls today, the
// date and time when not.
func untilText(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// describeState renders a key's live state in a few words:
// "cooling 27s (rate limited (retry-after))".
func describeState(state, reason string, seconds float64) string {
	reason = termSafe(reason)
	s := state
	if seconds > 0 {
		s += " " + time.Duration(seconds*float64(time.Second)).Round(time.Second).String()
	}
	if reason != "" {
		s += " (" + reason + ")"
	}
	return s
}

func ConfigureKeyStateCommands(app *ucli.App) {
	configureKeyStateCommand(app, "enable", "put a key back in rotation now",
		"Undoes disable, and takes the key out of parking (invalid key, quota) so that the next request tries it. "+
			"Starts the daemon if needed.")
	configureKeyStateCommand(app, "disable", "take a key out of rotation by hand",
		"The key serves no request until 'llmkey enable', or for --for DURATION. Survives daemon restarts. "+
			"Starts the daemon if needed.",
		&ucli.StringFlag{Name: "for", Usage: "re-enable by itself after `DURATION` (e.g. 30m, 2h, 1d)"})
	configureKeyStateCommand(app, "reset", "forget what llmkey learned about a key",
		"Clears the key's cooldowns, parking, backoff, recent failures, and its being nearly spent (pacing). A disable by hand stays (use enable), "+
			"and the rpm/tpm windows stay, since those requests were sent. Starts the daemon if needed.")
}
