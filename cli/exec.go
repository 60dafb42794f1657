package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon"
	"github.com/llmkey/llmkey/state"
)

// ExecCommandInput is what "llmkey exec" was asked to do.
type ExecCommandInput struct {
	Paths   state.Paths
	NoStart bool
	Command []string // empty: $SHELL
}

func ConfigureExecCommands(app *ucli.App) {
	noStart := &ucli.BoolFlag{Name: "no-start", Usage: "fail (exit 3) instead of starting the daemon"}
	app.Commands = append(app.Commands,
		&ucli.Command{
			Name:      "exec",
			Usage:     "run a command with its LLM SDKs pointed at the proxy and a local token as their key",
			ArgsUsage: "[--no-start] -- CMD [ARGS...]",
			Description: "Starts the daemon if needed, sets the variables printed by 'llmkey env', then replaces itself " +
				"with CMD (so CMD's exit status and signals are its own). With no CMD it starts $SHELL. The real keys never " +
				"enter CMD's environment.",
			Flags: []ucli.Flag{noStart},
			Action: func(c *ucli.Context) error {
				p, err := resolvePaths(c)
				if err != nil {
					return err
				}
				return ExecCommand(c, ExecCommandInput{Paths: p, NoStart: c.Bool("no-start"), Command: c.Args().Slice()})
			},
		},
		&ucli.Command{
			Name:  "env",
			Usage: "print the variables exec sets, for eval",
			Description: "eval \"$(llmkey env)\" in sh, bash or zsh; llmkey env --shell fish | source in fish; --shell json " +
				"prints an object in which variables to remove are null. For each provider with a key: OPENAI_BASE_URL, " +
				"OPENAI_API_BASE, OPENAI_API_KEY; ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY (ANTHROPIC_AUTH_TOKEN removed); " +
				"GOOGLE_GEMINI_BASE_URL, GEMINI_API_KEY (GOOGLE_API_KEY removed). Always LLMKEY_URL and LLMKEY_TOKEN.",
			Flags: []ucli.Flag{noStart, &ucli.StringFlag{Name: "shell", Value: "sh", Usage: "output for `SHELL`: sh, fish or json"}},
			Action: withPaths(func(c *ucli.Context, p state.Paths) error {
				return EnvCommand(c, p, c.Bool("no-start"), c.String("shell"))
			}),
		},
	)
}

// ExecCommand replaces this process with the command, under the proxy.
func ExecCommand(c *ucli.Context, in ExecCommandInput) error {
	set, unset, err := proxyEnv(c, in.Paths, in.NoStart)
	if err != nil {
		return err
	}
	argv := in.Command
	if len(argv) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		argv = []string{sh}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return &Error{Err: fmt.Errorf("command not found: %s", argv[0]), Hint: "check the name and your PATH", Code: ExitCommandNotFound}
	}
	env := mergeEnv(os.Environ(), set, unset)
	err = syscall.Exec(path, argv, env)
	return &Error{Err: fmt.Errorf("run %s: %w", argv[0], err), Code: ExitCommandCannotRun}
}

// EnvCommand prints the variables for a shell to eval.
func EnvCommand(c *ucli.Context, p state.Paths, noStart bool, shell string) error {
	if shell != "sh" && shell != "fish" && shell != "json" {
		return usageError("choose --shell sh, fish or json", "unknown shell %q", shell)
	}
	set, unset, err := proxyEnv(c, p, noStart)
	if err != nil {
		return err
	}
	w := c.App.Writer
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

// proxyEnv asks the daemon (starting it unless noStart) for the proxy URL
// and token, and returns the variables to set and to remove (contract
// section 5). Providers without keys keep their variables as they were.
func proxyEnv(c *ucli.Context, p state.Paths, noStart bool) (set [][2]string, unset []string, err error) {
	client := daemon.NewClient(p)
	if noStart {
		if _, err := client.Status(c.Context); errors.Is(err, daemon.ErrNotRunning) {
			return nil, nil, notRunningError()
		} else if err != nil {
			return nil, nil, err
		}
	} else if _, _, err := ensureDaemon(c.Context, p); err != nil {
		return nil, nil, err
	}
	e, err := client.Env(c.Context)
	if err != nil {
		return nil, nil, err
	}
	warnVersion(c, e.Version)

	has := func(p string) bool { return slices.Contains(e.Providers, p) }
	if has("openai") {
		set = append(set, [2]string{"OPENAI_BASE_URL", e.ProxyURL + "/openai"}, [2]string{"OPENAI_API_BASE", e.ProxyURL + "/openai"},
			[2]string{"OPENAI_API_KEY", e.Token})
	}
	if has("anthropic") {
		set = append(set, [2]string{"ANTHROPIC_BASE_URL", e.ProxyURL + "/anthropic"}, [2]string{"ANTHROPIC_API_KEY", e.Token})
		unset = append(unset, "ANTHROPIC_AUTH_TOKEN")
	}
	if has("gemini") {
		set = append(set, [2]string{"GOOGLE_GEMINI_BASE_URL", e.ProxyURL + "/gemini"}, [2]string{"GEMINI_API_KEY", e.Token})
		unset = append(unset, "GOOGLE_API_KEY")
	}
	set = append(set, [2]string{"LLMKEY_URL", e.ProxyURL}, [2]string{"LLMKEY_TOKEN", e.Token})
	return set, unset, nil
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
