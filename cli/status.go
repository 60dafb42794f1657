package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"

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
		printStatus(s.Out, st)
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

// errSilent is an error whose story has already been told on stdout.
var errSilent = errors.New("")

func printStatus(w io.Writer, st *control.Status) {
	if !st.Running {
		fmt.Fprintln(w, "daemon: not running (llmkey start, or any llmkey exec, starts it)")
		return
	}
	state := "running"
	if st.Draining {
		state = "draining"
	}
	fmt.Fprintf(w, "daemon:  %s, pid %d, version %s, %d in flight\n", state, st.PID, st.Version, st.InFlight)
	fmt.Fprintf(w, "proxy:   %s\n", st.ProxyURL)
	if kf := st.Keyfile; kf != nil {
		fmt.Fprintf(w, "keyfile: %s (loaded %s)\n", kf.Path, kf.LoadedAt.Local().Format("15:04:05"))
		if kf.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", termSafe(kf.Error))
			if kf.Hint != "" {
				fmt.Fprintf(w, "  hint:  %s\n", kf.Hint)
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(st.Providers)) {
		var keys []string
		for _, k := range st.Providers[n].Keys {
			keys = append(keys, k.Name+" "+describeState(k.State, k.Reason, k.CooldownSeconds))
		}
		fmt.Fprintf(w, "%-10s %s\n", n+":", strings.Join(keys, ", "))
	}
	if s := st.State; s != nil {
		if s.PersistedAt != nil && s.FailingSince == nil {
			fmt.Fprintf(w, "state:   %s (written %s)\n", s.Dir, s.PersistedAt.Local().Format("15:04:05"))
		}
		if s.Notice != "" {
			fmt.Fprintf(w, "notice:  %s\n", termSafe(s.Notice))
		}
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem: %s\n", termSafe(p))
	}
}
