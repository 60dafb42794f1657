// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// service install writes what starts the daemon with the session, so that
// no tool waits for a first exec to spawn it: on Linux a systemd user
// service and socket (the socket holds the proxy port and the control
// socket, and starts the daemon at the first connection to either), on
// macOS a launchd agent. Every file it writes starts with serviceMark,
// and uninstall removes only files that do.

const serviceMark = "Written by llmkey service install; llmkey service uninstall removes it."

// serviceFile is one file install writes.
type serviceFile struct {
	Path, Content string
}

// ServiceFiles are the files install writes for goos, for the llmkey at
// bin, the paths p and the proxy address listen.
func ServiceFiles(goos, home, bin string, p state.Paths, listen string) []serviceFile {
	env := []string{"LLMKEY_KEYFILE=" + p.Keyfile, "LLMKEY_STATE_DIR=" + p.StateDir, "LLMKEY_RUNTIME_DIR=" + p.RuntimeDir}
	if goos == "darwin" {
		return []serviceFile{{filepath.Join(home, "Library", "LaunchAgents", launchdLabel+".plist"), launchdPlist(bin, env, p)}}
	}
	dir := filepath.Join(userConfigDir(home), "systemd", "user")
	var envLines strings.Builder
	for _, e := range env {
		fmt.Fprintf(&envLines, "Environment=%s\n", systemdQuote(e))
	}
	service, socket := systemdUnits(serviceMark, systemdQuote(strings.ReplaceAll(bin, "$", "$$")), envLines.String(),
		listen, strings.ReplaceAll(p.SocketPath(), "%", "%%"))
	return []serviceFile{{filepath.Join(dir, "llmkey.service"), service}, {filepath.Join(dir, "llmkey.socket"), socket}}
}

const launchdLabel = "dev.llmkey.daemon"

func launchdPlist(bin string, env []string, p state.Paths) string {
	esc := func(s string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString("<!-- " + serviceMark + " -->\n<plist version=\"1.0\">\n<dict>\n")
	b.WriteString("\t<key>Label</key>\n\t<string>" + launchdLabel + "</string>\n")
	b.WriteString("\t<key>ProgramArguments</key>\n\t<array>\n\t\t<string>" + esc(bin) + "</string>\n\t\t<string>daemon</string>\n\t\t<string>--wait</string>\n\t</array>\n")
	b.WriteString("\t<key>EnvironmentVariables</key>\n\t<dict>\n")
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		b.WriteString("\t\t<key>" + esc(k) + "</key>\n\t\t<string>" + esc(v) + "</string>\n")
	}
	b.WriteString("\t</dict>\n")
	b.WriteString("\t<key>RunAtLoad</key>\n\t<true/>\n")
	b.WriteString("\t<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>\n\t</dict>\n")
	b.WriteString("\t<key>ProcessType</key>\n\t<string>Background</string>\n")
	b.WriteString("\t<key>Umask</key>\n\t<integer>63</integer>\n")
	b.WriteString("\t<key>StandardErrorPath</key>\n\t<string>" + esc(state.LaunchdLogFile(p.StateDir)) + "</string>\n")
	b.WriteString("</dict>\n</plist>\n")
	return b.String()
}

// userConfigDir is where systemd looks for a user's own units:
// $XDG_CONFIG_HOME when it is an absolute path, as systemctl and the
// user manager read it, or else ~/.config.
func userConfigDir(home string) string {
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return d
	}
	return filepath.Join(home, ".config")
}

// madeMark starts the line in each file install writes that lists the
// directories it had to create for them, so that uninstall removes those
// (when empty) and no other. Each path is a Go-quoted string with "-"
// written \x2d, so that the line is also a valid XML comment.
const madeMark = "Directories llmkey service install made (uninstall removes them when empty):"

// withMade puts the line listing dirs after the mark line of content.
func withMade(content string, dirs []string) string {
	if len(dirs) == 0 {
		return content
	}
	var q []string
	for _, d := range dirs {
		q = append(q, strings.ReplaceAll(strconv.Quote(d), "-", `\x2d`))
	}
	line := madeMark + " " + strings.Join(q, " ")
	if strings.HasPrefix(content, "<?xml") {
		line = "<!-- " + line + " -->"
	} else {
		line = "# " + line
	}
	i := strings.Index(content, serviceMark)
	i += strings.IndexByte(content[i:], '\n') + 1
	return content[:i] + line + "\n" + content[i:]
}

// madeDirs reads the directories withMade listed in content, and the
// content without that line.
func madeDirs(content string) (dirs []string, rest string) {
	i := strings.Index(content, madeMark)
	if i < 0 {
		return nil, content
	}
	start := strings.LastIndexByte(content[:i], '\n') + 1
	end := strings.IndexByte(content[i:], '\n')
	if end < 0 {
		return nil, content
	}
	line := strings.TrimSpace(strings.TrimSuffix(content[i+len(madeMark):i+end], " -->"))
	for line != "" {
		q, err := strconv.QuotedPrefix(line)
		if err != nil {
			break
		}
		if d, _ := strconv.Unquote(q); filepath.IsAbs(d) {
			dirs = append(dirs, d)
		}
		line = strings.TrimSpace(line[len(q):])
	}
	return dirs, content[:start] + content[i+end+1:]
}

// appendNew appends those of xs that list does not hold yet.
func appendNew(list []string, xs ...string) []string {
	for _, x := range xs {
		if !slices.Contains(list, x) {
			list = append(list, x)
		}
	}
	return list
}

// missingDirs are dir and those of its parents that do not exist, the
// outermost first.
func missingDirs(dir string) []string {
	var out []string
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(dir); err == nil || dir == filepath.Dir(dir) {
			break
		}
		out = append([]string{dir}, out...)
	}
	return out
}

// systemdQuote quotes s for a unit file's command line or assignment
// when it holds spaces, quotes or backslashes; % is doubled everywhere.
// On a command line "$" must be doubled too (ExecStart substitutes
// ${VAR}); an Environment= value is taken as it is.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// ServiceInstallCommandInput is what "llmkey service install" was asked
// to do.
type ServiceInstallCommandInput struct {
	Paths  state.Paths
	DryRun bool // print the files and commands, change nothing
}

// ServiceUninstallCommandInput is what "llmkey service uninstall" was
// asked to do.
type ServiceUninstallCommandInput struct {
	Paths  state.Paths
	DryRun bool // print the commands and the files to remove, change nothing
}

// ServiceStatusCommandInput is what "llmkey service status" was asked.
type ServiceStatusCommandInput struct {
	Paths state.Paths
}

func ConfigureServiceCommand(app *ucli.App) {
	dry := &ucli.BoolFlag{Name: "dry-run", Usage: "print the files and commands, change nothing"}
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "service",
		Usage: "start the daemon with your session: install, uninstall or status (systemd on Linux, launchd on macOS)",
		Description: "install writes a systemd user service and socket (~/.config/systemd/user/llmkey.{service,socket}: the socket holds " +
			"the proxy port and the control socket and starts the daemon at the first connection) or a launchd agent " +
			"(~/Library/LaunchAgents/" + launchdLabel + ".plist), then enables it with systemctl --user or launchctl when they can be reached, " +
			"and says the commands otherwise. The files pin the keyfile, state and runtime dirs this command resolves. " +
			"uninstall stops it and removes exactly the files install wrote. status says what is installed, whether it starts with the session and whether it runs now.",
		Subcommands: []*ucli.Command{
			{Name: "install", Usage: "write and enable the service", Flags: []ucli.Flag{dry},
				Action: withPaths(func(c *ucli.Context, p state.Paths) error {
					return ServiceInstallCommand(c.Context, ServiceInstallCommandInput{Paths: p, DryRun: c.Bool("dry-run")}, streams(c))
				})},
			{Name: "uninstall", Usage: "disable the service and remove its files", Flags: []ucli.Flag{dry},
				Action: withPaths(func(c *ucli.Context, p state.Paths) error {
					return ServiceUninstallCommand(c.Context, ServiceUninstallCommandInput{Paths: p, DryRun: c.Bool("dry-run")}, streams(c))
				})},
			{Name: "status", Usage: "say whether the service is installed",
				Action: withPaths(func(c *ucli.Context, p state.Paths) error {
					return ServiceStatusCommand(c.Context, ServiceStatusCommandInput{Paths: p}, streams(c))
				})},
			packagedUnitsCommand(),
		},
	})
}

// serviceHere is what install would write now: for this llmkey binary,
// the paths p and the keyfile's listen.
type serviceHere struct {
	home, bin, listen string
	files             []serviceFile
}

func serviceFilesHere(p state.Paths) (serviceHere, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return serviceHere{}, fail("set HOME", "%v", err)
	}
	bin, err := llmkeyBinary()
	if err != nil {
		return serviceHere{}, err
	}
	listen := state.DefaultListen
	if cfg, err := state.Load(p.Keyfile); err == nil {
		listen = cfg.Listen()
	}
	return serviceHere{home: home, bin: bin, listen: listen, files: ServiceFiles(runtime.GOOS, home, bin, p, listen)}, nil
}

// llmkeyBinary is the path of this llmkey, for the service to run.
func llmkeyBinary() (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", fail("run llmkey by its path (e.g. ~/go/bin/llmkey service install)", "find the llmkey binary for the unit's ExecStart: %v", err)
	}
	bin, _ = filepath.EvalSymlinks(bin)
	return bin, nil
}

// installable refuses to write a service for a binary that will not be
// there for it: one go run built (in GOTMPDIR or TMPDIR, under go-buildN/
// bNNN/exe/, removed when go run exits), or one removed or replaced since
// it started; or, on Linux, one systemd will not start.
func installable(bin string) error {
	const hint = "install llmkey first (go install github.com/llmkey/llmkey@latest, or go build -o ~/.local/bin/llmkey .), then run that llmkey's service install"
	parts := strings.Split(filepath.ToSlash(bin), "/")
	for i := 0; i+3 < len(parts); i++ {
		if digitsAfter(parts[i], "go-build") && digitsAfter(parts[i+1], "b") && parts[i+2] == "exe" {
			return fail(hint, "this llmkey is go run's temporary build (%s), which is deleted when it exits: the service could not start it", bin)
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return fail(hint, "this llmkey's binary (%s) was removed or replaced since it started: the service could not start it", bin)
	}
	if runtime.GOOS == "linux" && strings.ContainsAny(bin, `"'\`) {
		return fail("install llmkey at a path without quotes or backslashes (e.g. go build -o ~/.local/bin/llmkey .), then run that llmkey's service install",
			"systemd will not start a program whose path holds a quote or a backslash: %s", bin)
	}
	return nil
}

// writablePaths refuses paths a unit file or a plist cannot hold: a
// control character (a newline ends a unit's line; XML 1.0 has no way to
// write most of them).
func writablePaths(paths ...string) error {
	for _, p := range paths {
		if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fail("use a path without control characters for the llmkey binary, the keyfile (--keyfile) and the state and runtime dirs (LLMKEY_STATE_DIR, LLMKEY_RUNTIME_DIR)",
				"a service file cannot name %q: it holds a control character", p)
		}
	}
	return nil
}

// digitsAfter reports whether s is prefix and then one digit or more.
func digitsAfter(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

// written reports whether f is there, written by llmkey.
func written(f serviceFile) bool {
	b, err := os.ReadFile(f.Path)
	return err == nil && bytes.Contains(b, []byte(serviceMark))
}

// fileState is how a service file stands against what install would
// write now.
type fileState uint8

const (
	fileNotInstalled fileState = iota
	fileInstalled              // as install would write it now
	fileStale                  // there, but not as install would write it now
)

// serviceFileState says whether f is installed, and as it would be
// written now.
func serviceFileState(f serviceFile) fileState {
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return fileNotInstalled
	}
	if _, written := madeDirs(string(b)); written != f.Content {
		return fileStale
	}
	return fileInstalled
}

// ServiceStatusCommand says which of the service's files are installed,
// and whether as this llmkey would write them now; when any is, what the
// service manager says of the service.
func ServiceStatusCommand(ctx context.Context, in ServiceStatusCommandInput, s Streams) error {
	here, err := serviceFilesHere(in.Paths)
	if err != nil {
		return err
	}
	present := false
	for _, f := range here.files {
		switch serviceFileState(f) {
		case fileNotInstalled:
			fmt.Fprintf(s.Out, "%s: not installed\n", f.Path)
		case fileStale:
			fmt.Fprintf(s.Out, "%s: installed, but not as this llmkey would write it now (llmkey service install rewrites it)\n", f.Path)
			present = true
		default:
			fmt.Fprintf(s.Out, "%s: installed\n", f.Path)
			present = true
		}
	}
	if packagedHere(s.Out, here.files) {
		present = true
	}
	if present {
		fmt.Fprintln(s.Out, serviceState(ctx, runtime.GOOS))
	}
	return nil
}

// ServiceInstallCommand writes the service's files and enables them with
// the service manager, or says the commands that would where it cannot
// be reached. Installed again, it rewrites the files and restarts what
// changed.
func ServiceInstallCommand(ctx context.Context, in ServiceInstallCommandInput, s Streams) error {
	here, err := serviceFilesHere(in.Paths)
	if err != nil {
		return err
	}
	if err := here.check(in.Paths); err != nil {
		return err
	}
	cmds := installCommands(runtime.GOOS, here.files)
	installed := slices.ContainsFunc(here.files, written)
	changed := false
	if installed {
		changed = slices.ContainsFunc(here.files, func(f serviceFile) bool { return serviceFileState(f) == fileStale })
		cmds = reinstallCommands(runtime.GOOS, cmds, changed)
	}
	if in.DryRun {
		for _, f := range here.files {
			fmt.Fprintf(s.Out, "# %s\n%s\n", f.Path, f.Content)
		}
		printCommands(s.Out, cmds)
		return nil
	}
	// A first install on Linux: the port must be free for the socket.
	if runtime.GOOS == "linux" && !installed {
		if err := portFree(ctx, in.Paths, here.listen); err != nil {
			return err
		}
	}
	if err := writeServiceFiles(here.files, s); err != nil {
		return err
	}
	stopFirst, err := stopSpawnedDaemon(ctx, in.Paths, s)
	if err != nil {
		return err
	}
	ran, failed := runServiceCommands(ctx, cmds, s)
	switch {
	case !ran && len(cmds) > 0:
		return enableOffline(ctx, runtime.GOOS, here.files[0].Path, stopFirst, s)
	case failed > 0:
		return fail("llmkey service status says what is enabled; fix what the warnings above say, then llmkey service install again",
			"wrote the service's files, but %d of the commands that enable them failed", failed)
	case len(cmds) == 0:
	case runtime.GOOS == "darwin":
		s.done("loaded %s: the daemon runs now, and at each login", launchdLabel)
	default:
		s.done("enabled llmkey.socket: it listens now, starts the daemon at the first connection, and starts with your session")
		if changed {
			s.done("restarted llmkey.socket and the daemon, for the units as written now (the old daemon drained)")
		}
	}
	return nil
}

// enableOffline enables what it can where the service manager could not
// be reached (over ssh with no login session, in a container): on Linux
// systemctl links the socket into sockets.target.wants by itself, and
// the user manager of the next login starts it; on macOS launchd loads
// the agent written in ~/Library/LaunchAgents at the next login. It says
// so, and fails when nothing could be enabled: commands that need the
// manager would fail here too, so none is prescribed.
func enableOffline(ctx context.Context, goos, agent string, stopFirst bool, s Streams) error {
	meanwhile := "meanwhile the daemon starts on demand, as without the service (llmkey exec, llmkey start)"
	if stopFirst {
		meanwhile = "meanwhile the daemon llmkey started serves; stop it (llmkey stop) before that login, or it keeps the port from the service"
	}
	if goos == "darwin" {
		s.done("wrote %s: launchctl cannot reach your login session here (over ssh?), so launchd loads it at your next login, not now; %s", agent, meanwhile)
		return nil
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return fail("the daemon starts on demand without it (llmkey exec, llmkey start); llmkey service uninstall removes the units",
			"wrote the units, but nothing here can enable them: systemctl is not installed (no systemd here)")
	}
	out, err := exec.CommandContext(ctx, "systemctl", "--user", "enable", "llmkey.socket").CombinedOutput()
	if err != nil {
		return fail("in a login session with a user manager: llmkey service install; "+meanwhile,
			"wrote the units, but could not enable llmkey.socket: %s", strings.TrimSpace(string(out)))
	}
	when := "it starts at your next login, not now"
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		when = "it starts at your next login with a user manager, which may be never here: this system was not started by systemd (a container?)"
	}
	s.done("enabled llmkey.socket, without a user manager: none runs here now (over ssh without a login session, or in a container), so %s; %s", when, meanwhile)
	return nil
}

// check refuses to install what could not start: a port picked at each
// start, a binary that will not be there, a path a file cannot name.
func (h serviceHere) check(p state.Paths) error {
	if strings.HasSuffix(h.listen, ":0") {
		return fail("set [daemon] listen to a fixed loopback port (default "+state.DefaultListen+"): the socket must know it", "the keyfile's listen %q picks a port at each start", h.listen)
	}
	if err := installable(h.bin); err != nil {
		return err
	}
	return writablePaths(h.bin, p.Keyfile, p.StateDir, p.RuntimeDir, h.home)
}

// portFree refuses listen when no daemon of ours answers and another
// program holds it: the socket could not listen there.
func portFree(ctx context.Context, p state.Paths, listen string) error {
	if _, err := control.NewClient(p).Status(ctx); !errors.Is(err, control.ErrNotRunning) {
		return nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fail("set [daemon] listen in "+p.Keyfile+" to a free loopback port, then run llmkey service install again",
			"%s is taken by another program (or another user's llmkey): the socket could not listen there", listen)
	}
	ln.Close()
	return nil
}

// writeServiceFiles writes files, over none but llmkey's own. The
// directories made, by this install or one before it, are listed in
// every file, for uninstall.
func writeServiceFiles(files []serviceFile, s Streams) error {
	var made []string
	for _, f := range files {
		if fi, err := os.Stat(f.Path); err == nil && !fi.Mode().IsRegular() {
			return fail("move it away, or remove it, to let llmkey write its own", "%s exists and is not a file (%s)", f.Path, fi.Mode().Type())
		}
		b, err := os.ReadFile(f.Path)
		if err == nil && !bytes.Contains(b, []byte(serviceMark)) {
			return fail("move it away, or remove it, to let llmkey write its own", "%s exists and was not written by llmkey", f.Path)
		}
		before, _ := madeDirs(string(b))
		made = appendNew(appendNew(made, before...), missingDirs(filepath.Dir(f.Path))...)
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return fail("make it a directory you can write (ls -ld it and its parents), then run llmkey service install again", "create %s: %w", filepath.Dir(f.Path), err)
		}
		if err := state.WriteAtomic(f.Path, []byte(withMade(f.Content, made)), 0o644); err != nil {
			return fail("fix what the error says (space, permissions), then run llmkey service install again: it writes every file anew", "%w", err)
		}
		s.done("wrote %s", f.Path)
	}
	return nil
}

// stopSpawnedDaemon stops a daemon the CLI started, which holds the port
// and the socket that the service is about to take (the socket unit
// could not bind them; a launchd agent's daemon would find the lock
// taken). Where the service manager cannot be reached, the service will
// not start now either: it reports that the user should stop it first.
func stopSpawnedDaemon(ctx context.Context, p state.Paths, s Streams) (stopFirst bool, err error) {
	st, err := control.NewClient(p).Status(ctx)
	if err != nil || !st.Spawned {
		return false, nil
	}
	if !managerReachable(ctx, runtime.GOOS) {
		return true, nil
	}
	s.info("stopping the daemon llmkey started (pid %d): the service takes over its port and socket", st.PID)
	_, err = StopCommand(ctx, p, s)
	return false, err
}

// ServiceUninstallCommand disables the service with the service manager
// (or says the commands that would, where it cannot be reached), and
// removes the files install wrote and the directories it made, when
// empty. Files llmkey did not write are left alone.
func ServiceUninstallCommand(ctx context.Context, in ServiceUninstallCommandInput, s Streams) error {
	here, err := serviceFilesHere(in.Paths)
	if err != nil {
		return err
	}
	var cmds [][]string // none when nothing of llmkey's is installed: another's unit is left alone
	if slices.ContainsFunc(here.files, written) {
		cmds = uninstallCommands(runtime.GOOS)
	}
	if in.DryRun {
		printCommands(s.Out, cmds)
		for _, f := range here.files {
			fmt.Fprintln(s.Out, "rm "+f.Path)
		}
		for _, dir := range uninstallDirs(here.home, here.files, listedDirs(here.files)) {
			fmt.Fprintln(s.Out, "rmdir "+dir+" (if empty)")
		}
		return nil
	}
	ran, failed := runServiceCommands(ctx, cmds, s)
	switch {
	case !ran && len(cmds) > 0:
		disableOffline(ctx, runtime.GOOS, s)
	case failed > 0 || len(cmds) == 0:
	case runtime.GOOS == "darwin":
		s.done("unloaded %s", launchdLabel)
	default:
		s.done("stopped and disabled llmkey.socket and llmkey.service")
	}
	return removeServiceFiles(here, s)
}

// disableOffline disables what it can where the service manager could
// not be reached: nothing of the service runs there (no manager started
// it), so the links that start it at login are all there is to undo; a
// launchd agent is not loaded at the next login once its file is gone.
func disableOffline(ctx context.Context, goos string, s Streams) {
	if goos == "darwin" {
		s.done("launchctl cannot reach your login session here: %s is unloaded at its end, and not loaded again once its file is gone", launchdLabel)
		return
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return
	}
	if out, err := exec.CommandContext(ctx, "systemctl", "--user", "disable", "llmkey.socket", "llmkey.service").CombinedOutput(); err != nil {
		s.info("warning: systemctl --user disable llmkey.socket llmkey.service: %v: %s", err, strings.TrimSpace(string(out)))
		return
	}
	s.done("disabled llmkey.socket and llmkey.service (no user manager runs here: nothing of them ran)")
}

// listedDirs are the directories the files say install made.
func listedDirs(files []serviceFile) []string {
	var made []string
	for _, f := range files {
		b, _ := os.ReadFile(f.Path)
		dirs, _ := madeDirs(string(b))
		made = appendNew(made, dirs...)
	}
	return made
}

// removeServiceFiles removes the files llmkey wrote, and then the
// directories they say install made, and systemd's own, when empty.
func removeServiceFiles(here serviceHere, s Streams) error {
	removed := 0
	var made []string
	for _, f := range here.files {
		b, err := os.ReadFile(f.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || !bytes.Contains(b, []byte(serviceMark)) {
			s.info("warning: %s was not written by llmkey; left as it is", f.Path)
			continue
		}
		dirs, _ := madeDirs(string(b))
		made = appendNew(made, dirs...)
		if err := os.Remove(f.Path); err != nil {
			return fail("fix what the error says (permissions of "+filepath.Dir(f.Path)+"), then run llmkey service uninstall again", "remove %s: %w", f.Path, err)
		}
		removed++
		s.done("removed %s", f.Path)
	}
	if removed == 0 {
		s.done("the service was not installed; nothing to remove")
		packagedUninstallNote(s)
	}
	for _, dir := range uninstallDirs(here.home, here.files, made) {
		if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
			os.Remove(dir) // only an empty one
		}
	}
	return nil
}

// printCommands prints cmds as a user would type them.
func printCommands(w io.Writer, cmds [][]string) {
	for _, c := range cmds {
		fmt.Fprintln(w, commandLine(c))
	}
}

// installCommands are what enables the files.
func installCommands(goos string, files []serviceFile) [][]string {
	if goos == "darwin" {
		return [][]string{{"launchctl", "bootstrap", fmt.Sprintf("gui/%d", os.Getuid()), files[0].Path}}
	}
	return [][]string{{"systemctl", "--user", "daemon-reload"}, {"systemctl", "--user", "enable", "--now", "llmkey.socket"}}
}

// uninstallCommands are what disables them.
func uninstallCommands(goos string) [][]string {
	if goos == "darwin" {
		return [][]string{{"launchctl", "bootout", fmt.Sprintf("gui/%d/%s", os.Getuid(), launchdLabel)}}
	}
	return [][]string{{"systemctl", "--user", "disable", "--now", "llmkey.socket", "llmkey.service"}, {"systemctl", "--user", "daemon-reload"}}
}

// reinstallCommands are what makes a changed service take effect when
// install runs again (after llmkey moved, or the paths or the port did):
// the socket restarted, which binds the new port and restarts the
// service that requires it (the old daemon drains); on macOS the agent
// unloaded first, as launchctl loads no agent that is loaded.
func reinstallCommands(goos string, cmds [][]string, changed bool) [][]string {
	if goos == "darwin" {
		target := fmt.Sprintf("gui/%d", os.Getuid())
		return append([][]string{{"-launchctl", "bootout", target + "/" + launchdLabel}}, cmds...)
	}
	if changed {
		return append(cmds, []string{"systemctl", "--user", "restart", "llmkey.socket"})
	}
	return cmds
}

// uninstallDirs are the directories uninstall removes when nothing else
// is in them, innermost first: those the files list as made by install,
// and systemd's own between the units and the config dir, which a file of
// the user's in them may have kept off that list (an uninstall before
// this one could not remove them, and the install after found them).
func uninstallDirs(home string, files []serviceFile, made []string) []string {
	dirs := slices.Clone(made)
	if runtime.GOOS != "darwin" {
		for dir := filepath.Dir(files[0].Path); strings.HasPrefix(dir, userConfigDir(home)+string(filepath.Separator)); dir = filepath.Dir(dir) {
			dirs = appendNew(dirs, dir)
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	return dirs
}

// managerReachable reports whether systemctl or launchctl can reach the
// user's service manager here (not, for example, over ssh with no user
// session, or in a container).
func managerReachable(ctx context.Context, goos string) bool {
	cmd := exec.CommandContext(ctx, "systemctl", "--user", "show-environment")
	if goos == "darwin" {
		cmd = exec.CommandContext(ctx, "launchctl", "print", fmt.Sprintf("gui/%d", os.Getuid()))
	}
	return cmd.Run() == nil
}

// socketEnabled reports whether systemctl says llmkey.socket is enabled
// (it reads the unit files, and needs no user manager).
func socketEnabled() bool {
	out, _ := exec.Command("systemctl", "--user", "is-enabled", "llmkey.socket").Output()
	return strings.TrimSpace(string(out)) == "enabled"
}

// serviceState is what the service manager says of the service: whether
// it starts with the session, and whether it runs now.
func serviceState(ctx context.Context, goos string) string {
	if goos == "darwin" {
		target := fmt.Sprintf("gui/%d/%s", os.Getuid(), launchdLabel)
		out, err := exec.CommandContext(ctx, "launchctl", "print", target).CombinedOutput()
		if err != nil {
			return launchdLabel + ": not loaded (launchctl bootstrap gui/" + strconv.Itoa(os.Getuid()) + " " + "~/Library/LaunchAgents/" + launchdLabel + ".plist loads it)"
		}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), " = "); ok && k == "state" {
				return launchdLabel + ": loaded, " + v
			}
		}
		return launchdLabel + ": loaded"
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return "systemctl is not on PATH: whether the service is enabled or runs is unknown here"
	}
	// is-enabled reads the unit files, and needs no user manager.
	out, _ := exec.CommandContext(ctx, "systemctl", "--user", "is-enabled", "llmkey.socket").Output()
	enabled := strings.TrimSpace(string(out))
	if enabled == "" {
		enabled = "unknown to systemctl"
	}
	active, err := exec.CommandContext(ctx, "systemctl", "--user", "is-active", "llmkey.socket", "llmkey.service").CombinedOutput()
	lines := strings.Fields(string(active))
	reachable := !(err != nil && (bytes.Contains(active, []byte("Failed to connect")) || len(lines) != 2))
	state := "llmkey.socket: " + enabled
	switch {
	case enabled == "enabled" && reachable:
		state += " (it starts with your session)"
	case enabled == "enabled":
		state += " (it starts at your next login with a user manager)"
	case enabled == "disabled" && reachable:
		state += " (systemctl --user enable --now llmkey.socket starts it, and with each session)"
	case enabled == "disabled":
		state += " (llmkey service install enables it; it starts at your next login with a user manager)"
	}
	if !reachable {
		return state + "\nsystemctl cannot reach your user manager here: whether the service runs now is unknown"
	}
	return state + fmt.Sprintf("\nnow: llmkey.socket %s, llmkey.service %s", lines[0], lines[1])
}

// runServiceCommands runs them, and reports whether the service manager
// could be reached at all, and how many of them failed (each said).
func runServiceCommands(ctx context.Context, cmds [][]string, s Streams) (ran bool, failed int) {
	for _, c := range cmds {
		name, mayFail := strings.CutPrefix(c[0], "-")
		if _, err := exec.LookPath(name); err != nil {
			return false, 0
		}
		out, err := exec.CommandContext(ctx, name, c[1:]...).CombinedOutput()
		if err != nil && !mayFail {
			if bytes.Contains(out, []byte("Failed to connect")) || bytes.Contains(out, []byte("No medium")) || bytes.Contains(out, []byte("not been booted")) {
				return false, 0
			}
			s.info("warning: %s: %v: %s", commandLine(c), err, strings.TrimSpace(string(out)))
			failed++
		}
	}
	return true, failed
}

// commandLine is c as a user would type it. A command whose name starts
// with "-" may fail, as in make and in systemd's Exec lines: unloading an
// agent that is not loaded, before loading it again.
func commandLine(c []string) string {
	return strings.TrimPrefix(strings.Join(c, " "), "-")
}
