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
			"would send a tool around the proxy when it runs outside 'llmkey exec', and the configuration of codex, gemini " +
			"and opencode: not set up, set up for another port, a /v1/v1 double path, a login that wins over the API key; " +
			"and the service: files written for another llmkey, or its port held by a daemon llmkey started. " +
			"Never starts the daemon.",
		Action: withPaths(func(c *ucli.Context, p state.Paths) error {
			return DoctorCommand(c.Context, DoctorCommandInput{Paths: p, Getenv: os.Getenv}, streams(c))
		}),
	})
}

// bypassVars are variables that send a tool around the proxy, or to
// another place than exec's, when they are set in a tool's environment.
var bypassVars = []struct{ name, why string }{
	{"ANTHROPIC_API_URL", "some clients read it before ANTHROPIC_BASE_URL"},
	{"GOOGLE_GENAI_USE_VERTEXAI", "the genai SDK and Gemini CLI then go to Vertex AI"},
	{"OPENAI_ORG_ID", "it goes upstream with whichever key serves"},
	{"OPENAI_PROJECT_ID", "it goes upstream with whichever key serves"},
	{"ANTHROPIC_AUTH_TOKEN", "Claude Code prefers it to ANTHROPIC_API_KEY"},
}

// DoctorCommand prints each trap with its fix; the exit code is status's.
func DoctorCommand(ctx context.Context, in DoctorCommandInput, s Streams) error {
	st, err := control.NewClient(in.Paths).Status(ctx)
	running := err == nil && st.Running
	if err != nil && !errors.Is(err, control.ErrNotRunning) {
		return err
	}
	found := daemonFindings(in.Paths, st, running)
	proxyURL := ""
	if running {
		proxyURL = st.ProxyURL
	}
	for _, v := range bypassVars {
		if in.Getenv(v.name) != "" {
			found = append(found, finding{fmt.Sprintf("%s is set in this shell: %s", v.name, v.why),
				"llmkey exec clears it for the tools it runs; unset it for tools run without exec"})
		}
	}
	for _, t := range tools {
		if t.check == nil {
			continue
		}
		path, err := t.config(in.Getenv)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil || !running {
			continue // a tool that is not there, or nothing to compare with
		}
		for _, f := range t.check(data, proxyURL) {
			found = append(found, finding{f.problem + " (" + path + ")", f.fix})
		}
		found = append(found, toolLogins(t, path, data)...)
	}
	found = append(found, serviceFindings(ctx, in.Paths, st, running)...)
	for _, f := range found {
		fmt.Fprintf(s.Out, "problem: %s\n    fix: %s\n", termSafe(f.problem), f.fix)
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

// toolLogins finds a tool's own login that wins over the API key.
func toolLogins(t tool, path string, data []byte) []finding {
	if t.name == "codex" {
		auth, err := os.ReadFile(filepath.Join(filepath.Dir(path), "auth.json"))
		var a struct {
			Tokens json.RawMessage `json:"tokens"`
		}
		if err == nil && json.Unmarshal(auth, &a) == nil && len(a.Tokens) > 0 && string(a.Tokens) != "null" &&
			!strings.Contains(string(data), `model_provider = "llmkey"`) {
			return []finding{{"Codex is logged in with ChatGPT, which it uses instead of an API key", "llmkey setup codex (it picks the llmkey provider)"}}
		}
	}
	return nil
}
