// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/state"
)

// ExecCommandInput is what "llmkey exec" was asked to do.
type ExecCommandInput struct {
	Paths     state.Paths
	NoStart   bool
	Selection Selection
	Command   []string // empty: $SHELL
}

// Selection is exec's and env's --key, --tag, --label and --expires: the
// command gets a scoped token for those keys, counted under the label.
type Selection struct {
	Keys, Tags []string
	Label      string
	Expires    time.Duration
}

func (s Selection) scoped() bool { return len(s.Keys) > 0 || len(s.Tags) > 0 || s.Label != "" }

func selectionFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringSliceFlag{Name: "key", Usage: "only the key `PROVIDER/NAME` (repeatable)"},
		&ucli.StringSliceFlag{Name: "tag", Usage: "only keys with the tag `TAG` (repeatable)"},
		&ucli.StringFlag{Name: "label", Usage: "count the command's usage under `NAME` (usage --by label)"},
		&ucli.StringFlag{Name: "expires", Usage: "the scoped token ends after `DURATION` (e.g. 8h, 1d), not with CMD (exec) nor in 7 days (env)"},
	}
}

func selectionOf(c *ucli.Context) (Selection, error) {
	sel := Selection{Tags: c.StringSlice("tag"), Label: c.String("label")}
	if v := c.String("expires"); v != "" {
		d, err := state.ParseDuration(v)
		if err != nil || d <= 0 {
			return sel, usageError("use a positive duration, e.g. --expires 8h or 1d", "--expires %q is not a duration", v)
		}
		sel.Expires = d
	}
	for _, k := range c.StringSlice("key") {
		p, n, err := parseRef(k)
		if err != nil {
			return sel, err
		}
		sel.Keys = append(sel.Keys, p+"/"+n)
	}
	if sel.Expires != 0 && !sel.scoped() {
		return sel, usageError("--expires is for the scoped token of --key, --tag or --label", "--expires without a selection")
	}
	return sel, nil
}

func ConfigureExecCommands(app *ucli.App) {
	noStart := &ucli.BoolFlag{Name: "no-start", Usage: "fail (exit 3) instead of starting the daemon"}
	sel := selectionFlags()
	app.Commands = append(app.Commands,
		&ucli.Command{
			Name:      "exec",
			Usage:     "run a command with its LLM SDKs pointed at the proxy and a local token as their key",
			ArgsUsage: "[--no-start] [--key PROVIDER/NAME]... [--tag TAG]... [--label NAME] [--expires DUR] -- CMD [ARGS...]",
			Description: "Starts the daemon if needed, sets the variables printed by 'llmkey env', then replaces itself " +
				"with CMD (so CMD's exit status and signals are its own). With no CMD it starts $SHELL. The real keys never " +
				"enter CMD's environment. With --key, --tag or --label, CMD gets a scoped token that ends when CMD has exited " +
				"(see 'llmkey token'): in the variables of the selection's providers, and in those of every other provider that " +
				"held an llmkey token (as after 'eval \"$(llmkey env)\"'), which the proxy answers 403 not-selected; no other " +
				"token reaches CMD.",
			Flags: append([]ucli.Flag{noStart}, sel...),
			Action: func(c *ucli.Context) error {
				p, err := resolvePaths(c)
				if err != nil {
					return err
				}
				s, err := selectionOf(c)
				if err != nil {
					return err
				}
				return ExecCommand(c.Context, ExecCommandInput{Paths: p, NoStart: c.Bool("no-start"), Selection: s, Command: c.Args().Slice()}, streams(c))
			},
		},
		&ucli.Command{
			Name:  "env",
			Usage: "print the variables exec sets, for eval",
			Description: "eval \"$(llmkey env)\" in sh, bash or zsh; llmkey env --shell fish | source in fish; --shell json " +
				"prints an object in which variables to remove are null. For each provider with a key: " + envSummary() +
				". Always LLMKEY_URL and LLMKEY_TOKEN.",
			Flags: append([]ucli.Flag{noStart, &ucli.StringFlag{Name: "shell", Value: "sh", Usage: "output for `SHELL`: sh (also bash, zsh), fish or json"},
				&ucli.BoolFlag{Name: "json", Usage: "print JSON (the same as --shell json)"}}, sel...),
			Action: withPaths(func(c *ucli.Context, p state.Paths) error {
				s, err := selectionOf(c)
				if err != nil {
					return err
				}
				shell := c.String("shell")
				if c.Bool("json") {
					shell = "json"
				}
				return EnvCommand(c.Context, EnvCommandInput{Paths: p, NoStart: c.Bool("no-start"), Shell: shell, Selection: s}, streams(c))
			}),
		},
	)
}

// ExecCommand replaces this process with the command, under the proxy.
func ExecCommand(ctx context.Context, in ExecCommandInput, s Streams) error {
	argv := in.Command
	if len(argv) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		argv = []string{sh}
	}
	// Found and runnable before anything starts: a typo starts no daemon.
	path, err := exec.LookPath(argv[0])
	if err != nil {
		if fi, serr := os.Stat(argv[0]); serr == nil && strings.Contains(argv[0], "/") {
			what := "it is not executable"
			if fi.IsDir() {
				what = "it is a directory"
			}
			return &Error{Err: fmt.Errorf("cannot run %s: %s", argv[0], what), Hint: "chmod +x it, or run the right file", Code: ExitCommandCannotRun}
		}
		return &Error{Err: fmt.Errorf("command not found: %s", argv[0]), Hint: "check the name and your PATH", Code: ExitCommandNotFound}
	}
	// exec becomes the command, under its own pid: a scoped token ends
	// when the command has exited.
	e, err := daemonEnv(ctx, in.Paths, in.NoStart, in.Selection, true, s)
	if err != nil {
		return err
	}
	warnToolSetup(s, argv[0], e)
	set, unset := proxyVars(e, os.Getenv)
	err = syscall.Exec(path, argv, mergeEnv(os.Environ(), set, unset))
	return &Error{Err: fmt.Errorf("run %s: %w", argv[0], err), Code: ExitCommandCannotRun}
}

// EnvCommandInput is what "llmkey env" was asked to do.
type EnvCommandInput struct {
	Paths     state.Paths
	NoStart   bool
	Shell     string // sh, fish or json
	Selection Selection
}

// EnvCommand prints the variables for a shell to eval.
func EnvCommand(ctx context.Context, in EnvCommandInput, s Streams) error {
	switch in.Shell {
	case "bash", "zsh", "ksh", "dash":
		in.Shell = "sh"
	case "sh", "fish", "json":
	default:
		return usageError("choose --shell sh (bash, zsh), fish or json", "unknown shell %q", in.Shell)
	}
	e, err := daemonEnv(ctx, in.Paths, in.NoStart, in.Selection, false, s)
	if err != nil {
		return err
	}
	set, unset := proxyVars(e, os.Getenv)
	return writeEnv(s.Out, in.Shell, set, unset)
}

// writeEnv prints variables to set and to remove for shell.
func writeEnv(w io.Writer, shell string, set [][2]string, unset []string) error {
	switch shell {
	case "json":
		obj := map[string]*string{}
		for _, kv := range set {
			obj[kv[0]] = &kv[1]
		}
		for _, n := range unset {
			obj[n] = nil
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(obj)
	case "fish":
		for _, n := range unset {
			fmt.Fprintf(w, "set -e %s;\n", n)
		}
		for _, kv := range set {
			fmt.Fprintf(w, "set -gx %s %s;\n", kv[0], shQuote(kv[1]))
		}
	default:
		for _, n := range unset {
			fmt.Fprintf(w, "unset %s\n", n)
		}
		for _, kv := range set {
			fmt.Fprintf(w, "export %s=%s\n", kv[0], shQuote(kv[1]))
		}
	}
	return nil
}

// daemonEnv asks the daemon (starting it unless noStart) for the proxy
// URL, the token and the providers with keys. A scoped token asked for
// with endWithCaller (and no --expires) ends when this process has
// exited.
func daemonEnv(ctx context.Context, p state.Paths, noStart bool, sel Selection, endWithCaller bool, s Streams) (*control.Env, error) {
	// One call when the daemon runs (a tool's start waits on it); the
	// daemon is started only when none answers.
	client := control.NewClient(p)
	e, err := client.Env(ctx)
	switch {
	case errors.Is(err, control.ErrNotRunning) && noStart:
		return nil, notRunningError()
	case errors.Is(err, control.ErrNotRunning):
		if _, _, err := ensureDaemon(ctx, p); err != nil {
			return nil, err
		}
		if e, err = client.Env(ctx); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if e.Keyfile != "" && !samePath(e.Keyfile, p.Keyfile) {
		return nil, sameKeyfile(&control.Status{Keyfile: &control.KeyfileStatus{Path: e.Keyfile}}, p)
	}
	warnVersion(s, e.Version)
	if sel.scoped() {
		req := control.TokenRequest{Keys: sel.Keys, Tags: sel.Tags, Label: sel.Label, EndWithCaller: endWithCaller}
		if sel.Expires > 0 {
			req.TTL = sel.Expires.String()
		}
		t, err := client.IssueToken(ctx, req)
		if err != nil {
			return nil, err
		}
		e.Token = t.Token
		e.Providers = nil
		for _, ref := range t.Keys {
			prov, _, _ := strings.Cut(ref, "/")
			if !slices.Contains(e.Providers, prov) {
				e.Providers = append(e.Providers, prov)
			}
		}
	}
	// A tool that is not served falls back to its own key or the
	// provider's own URL: say why before it does.
	for _, problem := range e.Problems {
		fmt.Fprintf(s.Err, "llmkey: warning: %s\n", termSafe(problem))
	}
	return e, nil
}

// proxyVars are the variables to set and to remove so that the SDKs of
// every provider with a key go through the proxy with e's token, and
// LLMKEY_URL and LLMKEY_TOKEN. The other providers keep their variables
// as they were (getenv reads them), unless one holds an llmkey token (an
// 'eval "$(llmkey env)"' or an exec around this one put it there): it
// gets e's token too, so that no other token reaches the command. Outside
// a scoped token's selection, the proxy answers that provider 403
// not-selected, naming the selection, where removing its variables
// would let the tool go around the proxy with a key of its own.
func proxyVars(e *control.Env, getenv func(string) string) (set [][2]string, unset []string) {
	providers := slices.Clone(e.Providers)
	for _, p := range state.BuiltinNames() {
		if !slices.Contains(providers, p) && holdsToken(p, getenv) {
			providers = append(providers, p)
		}
	}
	for _, p := range providers {
		s, u := wire.SDKEnv(p, e.ProxyURL+"/"+p, e.Token)
		set, unset = append(set, s...), append(unset, u...)
	}
	set = append(set, [2]string{"LLMKEY_URL", e.ProxyURL}, [2]string{"LLMKEY_TOKEN", e.Token})
	return set, unset
}

// holdsToken reports whether a variable exec sets or removes for
// provider holds an llmkey token.
func holdsToken(provider string, getenv func(string) string) bool {
	set, unset := wire.SDKEnv(provider, "", "")
	for _, kv := range set {
		unset = append(unset, kv[0])
	}
	for _, name := range unset {
		if state.IsToken(getenv(name)) {
			return true
		}
	}
	return false
}

// mergeEnv returns environ with set applied and unset removed.
func mergeEnv(environ []string, set [][2]string, unset []string) []string {
	drop := map[string]bool{}
	for _, n := range unset {
		drop[n] = true
	}
	for _, kv := range set {
		drop[kv[0]] = true
	}
	out := make([]string, 0, len(environ)+len(set))
	for _, e := range environ {
		name, _, _ := strings.Cut(e, "=")
		if !drop[name] {
			out = append(out, e)
		}
	}
	for _, kv := range set {
		out = append(out, kv[0]+"="+kv[1])
	}
	sort.Strings(out[len(out)-len(set):])
	return out
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// warnToolSetup says when the tool about to run is one setup knows and
// its configuration would keep it off the proxy: not set up, or set up
// for another port than the daemon's now.
func warnToolSetup(s Streams, command string, e *control.Env) {
	for _, f := range toolSetupFindings(command, setupEnv{ProxyURL: e.ProxyURL, Providers: e.Providers}, os.Getenv) {
		fmt.Fprintf(s.Err, "llmkey: warning: %s\nhint: %s\n", f.problem, f.fix)
	}
}

// envSummary says which variables exec sets and clears for the three
// providers most tools use, from the wire package's table.
func envSummary() string {
	var parts []string
	for _, p := range []string{"openai", "anthropic", "gemini"} {
		set, unset := wire.SDKEnv(p, "", "")
		var names []string
		for _, v := range set {
			names = append(names, v[0])
		}
		part := strings.Join(names, ", ")
		if len(unset) > 0 {
			part += " (" + strings.Join(unset, ", ") + " removed)"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}
