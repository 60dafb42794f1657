// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/state"
)

// DoctorCommandInput is what "llmkey doctor" was asked to do.
type DoctorCommandInput struct {
	Paths  state.Paths
	Getenv func(string) string
}

func ConfigureDoctorCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "doctor",
		Usage: "find what keeps a tool off the proxy, and say the fix (exit 0, 1 or 3, as status)",
		Description: "Looks at the daemon (running, its version, keys that cannot serve), the variables in this shell that " +
			"exec clears (each named, with what it does; those that would send a tool around the proxy are problems) or " +
			"that point at llmkey on another port, and the configuration of every tool setup knows: a tool on PATH with no " +
			"file is not set up; a file set up for another port, a /v1/v1 double path, a login that wins over the API key, " +
			"an llmkey token a tool kept in its own file; and the service: files written for another llmkey, or its port " +
			"held by a daemon llmkey started. Never starts the daemon.",
		Action: withPaths(func(c *ucli.Context, p state.Paths) error {
			return DoctorCommand(c.Context, DoctorCommandInput{Paths: p, Getenv: os.Getenv}, streams(c))
		}),
	})
}

// clearedWhy is what a variable exec clears does to a tool that reads
// it, as the wire package says.
func clearedWhy(name string) wire.EnvVar {
	for _, v := range wire.Cleared() {
		if v.Name == name {
			return v
		}
	}
	return wire.EnvVar{Name: name}
}

// execVars are the variables exec sets and those it clears, for every
// built-in provider, as wire.SDKEnv says.
func execVars() (set, cleared []string) {
	seen := map[string]bool{}
	for _, p := range state.BuiltinNames() {
		s, u := wire.SDKEnv(p, "http://127.0.0.1:1/"+p, "t")
		for _, kv := range s {
			if !seen[kv[0]] {
				seen[kv[0]] = true
				set = append(set, kv[0])
			}
		}
		for _, n := range u {
			if !seen[n] {
				seen[n] = true
				cleared = append(cleared, n)
			}
		}
	}
	return set, cleared
}

// envFindings are the variables of this shell that exec would clear,
// and those it sets that point at llmkey on another port than the
// daemon's (left by an earlier eval of llmkey env); notes are cleared
// variables that change nothing through the proxy.
func envFindings(getenv func(string) string, proxyURL string) (found, notes []finding) {
	set, cleared := execVars()
	for _, n := range cleared {
		if getenv(n) == "" {
			continue
		}
		w := clearedWhy(n)
		f := finding{fmt.Sprintf("%s is set in this shell: %s", n, w.Why), "llmkey exec clears it for the tools it runs; unset it for tools run without exec"}
		if w.Harmless {
			notes = append(notes, finding{f.problem, "nothing to do: llmkey exec and llmkey env clear it"})
		} else {
			found = append(found, f)
		}
	}
	for _, n := range append(set, "LLMKEY_URL") {
		v := getenv(n)
		if proxyURL != "" && llmkeyURL.MatchString(jsonQuote(v)) && !strings.HasPrefix(v+"/", proxyURL+"/") {
			found = append(found, finding{fmt.Sprintf("%s is set in this shell to llmkey on another port (%s) than the daemon's %s", n, v, proxyURL),
				"eval \"$(llmkey env)\" again, or run tools with llmkey exec"})
		}
	}
	return found, notes
}

// DoctorCommand prints each trap with its fix; the exit code is status's.
func DoctorCommand(ctx context.Context, in DoctorCommandInput, s Streams) error {
	st, err := control.NewClient(in.Paths).Status(ctx)
	running := err == nil && st.Running
	if err != nil && !errors.Is(err, control.ErrNotRunning) {
		return err
	}
	found := daemonFindings(in.Paths, st, running)
	env := setupEnv{}
	if running {
		env = setupEnvOf(st)
	}
	vars, notes := envFindings(in.Getenv, env.ProxyURL)
	found = append(found, vars...)
	for _, t := range tools {
		if t.check == nil {
			continue
		}
		onPath := t.runBy(t.command())
		// Without the daemon, a tool's file has no port to be compared
		// with; a tool with no file is not set up all the same.
		if path, err := t.config(in.Getenv); running || err == nil && onPath && !fileExists(path) {
			found = append(found, toolFindings(t, env, in.Getenv, onPath)...)
		}
	}
	found = append(found, serviceFindings(ctx, in.Paths, st, running)...)
	for _, f := range found {
		fmt.Fprintf(s.Out, "problem: %s\n    fix: %s\n", termSafe(f.problem), f.fix)
	}
	for _, f := range notes {
		fmt.Fprintf(s.Out, "note: %s\n    %s\n", termSafe(f.problem), f.fix)
	}
	switch {
	case !running:
		return &Error{Err: errSilent, Code: ExitNotRunning}
	case len(found) > 0:
		return &Error{Err: errSilent, Code: ExitFailure}
	}
	fmt.Fprintln(s.Out, "no problems found: tools run with 'llmkey exec -- TOOL' go through the proxy")
	return nil
}

// serviceFindings are the service's problems: a service written for
// another llmkey binary, paths or port starts that one at login, not
// this one; one installed while a daemon llmkey started runs.
func serviceFindings(ctx context.Context, p state.Paths, st *control.Status, running bool) []finding {
	here, err := serviceFilesHere(p)
	if err != nil {
		return nil
	}
	var found []finding
	files := here.files
	for _, f := range files {
		if serviceFileState(f) == fileStale {
			found = append(found, finding{f.Path + " was written for another llmkey binary, other paths or another port than this one's",
				"llmkey service install (it rewrites it), or llmkey service uninstall"})
		}
	}
	// The service is installed, yet the daemon is one llmkey started
	// (its socket was stopped, or the agent not loaded, when a command
	// needed one): it holds the port and the socket the service needs.
	// Where no service manager can be reached (ssh, a container), the
	// service cannot run now whatever is done: the daemon llmkey started
	// is the one to serve, and install enabled what it could. Only a
	// socket not enabled is left to fix, and install does it there.
	installed := serviceFileState(files[0]) != fileNotInstalled
	reachable := serviceManaged(runtime.GOOS, files) && managerReachable(ctx, runtime.GOOS)
	_, noSystemctl := exec.LookPath("systemctl")
	switch {
	case installed && runtime.GOOS == "linux" && noSystemctl != nil:
		found = append(found, finding{"the service is installed, but nothing here can run it: systemctl is not installed (no systemd here)",
			"llmkey service uninstall; the daemon starts on demand (llmkey exec, llmkey start)"})
	case installed && !reachable && runtime.GOOS == "linux" && !socketEnabled():
		found = append(found, finding{"the service is installed, but llmkey.socket is not enabled: no login starts it",
			"llmkey service install (it enables it here, for your next login)"})
	case reachable && running && st.Spawned:
		fix := "llmkey stop, then systemctl --user enable --now llmkey.socket"
		if runtime.GOOS == "darwin" {
			fix = "llmkey stop: the agent's daemon, waiting for this one, takes over"
		}
		found = append(found, finding{fmt.Sprintf("the service is installed, but the daemon running (pid %d) is one llmkey started, not the service's: it holds the port and socket the service needs", st.PID), fix})
	}
	return found
}

// daemonFindings are the daemon's problems: not running (and its port
// held by another user), another version, another keyfile, and those
// it reports itself.
func daemonFindings(p state.Paths, st *control.Status, running bool) []finding {
	if !running {
		found := []finding{{"the daemon is not running", "llmkey start (any llmkey exec starts it too)"}}
		if held := portHeldByOtherUser(p); held != "" {
			found = append(found, finding{held, "stop those tools, and find out why that user holds the port; meanwhile set [daemon] listen in the keyfile to another port. " +
				"On a shared machine run the daemon from its socket (llmkey service install), which never lets the port go"})
		}
		return found
	}
	var found []finding
	if st.Version != Version {
		found = append(found, finding{fmt.Sprintf("the daemon runs version %s, this llmkey is %s", st.Version, Version), "llmkey restart"})
	}
	if st.Keyfile != nil && !samePath(st.Keyfile.Path, p.Keyfile) {
		found = append(found, finding{"the daemon serves the keyfile " + st.Keyfile.Path + ", not " + p.Keyfile, "llmkey stop, then run your command again"})
	}
	for _, problem := range st.Problems {
		found = append(found, finding{problem, "see llmkey status"})
	}
	return found
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// toolLogins finds a tool's own login that wins over the API key.
func toolLogins(t tool, path string, data []byte, env setupEnv) []finding {
	switch {
	case t.name == "pi" && data != nil:
		return piLogins(path, env)
	case t.name == "cline" && data != nil:
		return clineHubFindings(path)
	case t.name != "codex":
		return nil
	}
	auth, err := os.ReadFile(filepath.Join(filepath.Dir(path), "auth.json"))
	var a struct {
		Tokens json.RawMessage `json:"tokens"`
	}
	if err == nil && json.Unmarshal(auth, &a) == nil && len(a.Tokens) > 0 && string(a.Tokens) != "null" &&
		!strings.Contains(string(data), `model_provider = "llmkey"`) {
		return []finding{{"Codex is logged in with ChatGPT, which it uses instead of an API key", "llmkey setup codex (it picks the llmkey provider)"}}
	}
	return nil
}
