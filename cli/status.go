// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon"
	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// StatusCommandInput is what "llmkey status" was asked to do.
type StatusCommandInput struct {
	Paths state.Paths
	JSON  bool
	Quiet bool
}

func ConfigureStatusCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "status",
		Usage: "say whether the daemon runs and is healthy (exit 0, 1 or 3); never starts it",
		Description: "Exit 0: running, and every provider with keys has a usable key. Exit 1: running but degraded " +
			"(keyfile error, no keys, a provider without a usable key, state not persisted, a daemon of another version). Exit 3: not running. " +
			"--json prints running, pid, version, proxy_url, in_flight, draining, keyfile {path, error, line, hint}, " +
			"providers {NAME: {kind, base_url, keys [{name, fingerprint, state, cooldown_seconds, reason}]}}, " +
			"state {dir, persisted_at, failing_since, error, notice} and problems.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print JSON for scripts"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing; only the exit code tells"},
			&ucli.BoolFlag{Name: "wide", Usage: "on a terminal, print every column whole, however wide"},
			noColorFlag(),
		},
		Action: withPaths(func(c *ucli.Context, p state.Paths) error {
			return StatusCommand(c.Context, StatusCommandInput{Paths: p, JSON: c.Bool("json"), Quiet: c.Bool("quiet")}, streams(c))
		}),
	})
}

// StatusCommand prints the daemon's status; the exit code says the rest.
func StatusCommand(ctx context.Context, in StatusCommandInput, s Streams) error {
	st, err := control.NewClient(in.Paths).Status(ctx)
	if errors.Is(err, control.ErrNotRunning) {
		st = &control.Status{Running: false, Providers: map[string]control.ProviderStatus{}, Problems: []string{"not running"}}
		if held := portHeldByOtherUser(in.Paths); held != "" {
			st.Problems = append(st.Problems, held)
		}
	} else if err != nil {
		return err
	}
	if st.Running && st.Keyfile != nil && !samePath(st.Keyfile.Path, in.Paths.Keyfile) {
		st.Problems = append(st.Problems, fmt.Sprintf("the daemon serves the keyfile %s, not %s: stop it (llmkey stop) to serve yours", st.Keyfile.Path, in.Paths.Keyfile))
	}
	if st.Running && st.Version != Version {
		st.Problems = append(st.Problems, fmt.Sprintf("the daemon runs version %s, this llmkey is %s: llmkey restart", st.Version, Version))
	}

	switch {
	case in.Quiet:
	case in.JSON:
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return err
		}
	default:
		printStatus(s.Out, st, s.Look)
	}

	// The exit code is the answer; the message was printed above.
	switch {
	case !st.Running:
		return &Error{Err: errSilent, Code: ExitNotRunning}
	case len(st.Problems) > 0:
		return &Error{Err: errSilent, Code: ExitFailure}
	}
	return nil
}

// portHeldByOtherUser says, when another user holds the proxy's port
// the keyfile names (the daemon not running), who: tools already
// pointed at it send that user their prompts and their token.
func portHeldByOtherUser(p state.Paths) string {
	listen := state.DefaultListen
	if cfg, err := state.Load(p.Keyfile); err == nil {
		listen = cfg.Listen()
	}
	who := daemon.OtherUserOnPort(listen)
	if who == "" {
		return ""
	}
	return fmt.Sprintf("the proxy's port %s is held by another user, %s: tools pointed at it send that user their prompts and token", listen, who)
}

// errSilent is an error whose story has already been told on stdout.
var errSilent = errors.New("")

func printStatus(w io.Writer, st *control.Status, l look) {
	field := func(label, value string) {
		fmt.Fprint(w, wrap(fmt.Sprintf("%-9s%s", label+":", value), l.Width, 9))
	}
	if !st.Running {
		field("daemon", "not running (llmkey start, or any llmkey exec, starts it)")
		for _, p := range st.Problems[min(1, len(st.Problems)):] { // after "not running"
			field("problem", termSafe(p))
		}
		return
	}
	state := "running"
	if st.Draining {
		state = "draining"
	}
	started := ""
	if st.SocketActivated {
		started = ", started by its socket"
	}
	field("daemon", fmt.Sprintf("%s, pid %d, version %s, %d in flight%s", state, st.PID, st.Version, st.InFlight, started))
	field("proxy", st.ProxyURL)
	if kf := st.Keyfile; kf != nil {
		field("keyfile", fmt.Sprintf("%s (loaded %s)", kf.Path, kf.LoadedAt.Local().Format("15:04:05")))
		if kf.Error != "" {
			field("error", termSafe(kf.Error))
			if kf.Hint != "" {
				field("hint", kf.Hint)
			}
		}
	}
	if s := st.State; s != nil {
		if s.PersistedAt != nil && s.FailingSince == nil {
			field("state", fmt.Sprintf("%s (written %s)", s.Dir, s.PersistedAt.Local().Format("15:04:05")))
		}
		if s.Notice != "" {
			field("notice", termSafe(s.Notice))
		}
	}
	if lg := st.Log; lg != nil && lg.JournalUnit != "" {
		field("log", "systemd's journal, unit "+lg.JournalUnit)
	} else if lg != nil && lg.Path != "" {
		field("log", lg.Path)
	}
	// A key's own problem is its row's reason and its "to do" line below.
	shown := map[string]bool{}
	for _, ps := range st.Providers {
		for _, k := range ps.Keys {
			shown[daemon.KeyProblem(k)] = k.Action != ""
		}
	}
	for _, p := range st.Problems {
		if !shown[p] {
			field("problem", termSafe(p))
		}
	}
	printKeys(w, st, l)
}

// printKeys is status's table of keys, then what the user must do
// about some of them.
func printKeys(w io.Writer, st *control.Status, l look) {
	t := &table{
		// KEPT: requests of a conversation that came back to the key;
		// MOVED: conversations that moved to it; CACHED: cached input
		// tokens it read today. Left out first on a narrow terminal.
		// SPENT: today's cost, over the daily budget where there is one.
		head:     []string{"PROVIDER", "NAME", "STATE", "WAIT", "FLIGHT", "KEPT", "MOVED", "CACHED", "SPENT", "REASON"},
		right:    map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true, 8: true},
		shrink:   map[int]bool{1: true, 9: true},
		optional: []int{6, 5, 7, 8},
		color: func(_, col int, cell string) string {
			if col == 2 {
				return stateColor(cell)
			}
			return ""
		},
	}
	var todo []string
	for _, n := range slices.Sorted(maps.Keys(st.Providers)) {
		for _, k := range st.Providers[n].Keys {
			reason := termSafe(k.Reason)
			if k.ScarceUntil != nil && k.State == "ready" {
				reason = "nearly spent: fewer requests until its limit resets"
			}
			t.add(n, termSafe(k.Name), k.State, wait(k.CooldownSeconds), strconv.Itoa(k.InFlight),
				strconv.FormatUint(k.AffinityHits, 10), strconv.FormatUint(k.AffinityMoves, 10), num(k.CacheReadToday), spentCell(k), reason)
			ref := n + "/" + termSafe(k.Name)
			switch {
			case k.Action != "":
				todo = append(todo, ref+": "+termSafe(k.Action))
			case k.State == "disabled":
				todo = append(todo, ref+": taken out by hand: llmkey enable "+ref+" puts it back")
			}
		}
	}
	if len(t.rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	t.print(w, l)
	if len(todo) > 0 {
		fmt.Fprintln(w)
		for _, s := range todo {
			fmt.Fprint(w, wrap("to do: "+s, l.Width, 7))
		}
	}
}

// wrap breaks s at spaces to fit width (0: no limit), indenting the lines
// after the first by indent, and ends it with a newline.
func wrap(s string, width, indent int) string {
	if width <= 0 || cellWidth(s) <= width {
		return s + "\n"
	}
	var b strings.Builder
	col := 0
	for i, word := range strings.Split(s, " ") {
		ww := cellWidth(word)
		if i > 0 {
			if col+1+ww > width && col > indent {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteString(" ")
				col++
			}
		}
		b.WriteString(word)
		col += ww
	}
	return b.String() + "\n"
}
