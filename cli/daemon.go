// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon"
	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// stopTimeout bounds how long "stop" waits; the daemon's own drain
// timeout (default 30s) is shorter.
const stopTimeout = 2 * time.Minute

// stopQuiet is how long stop waits before it says what it waits for.
const stopQuiet = time.Second

func ConfigureDaemonCommands(app *ucli.App) {
	app.Commands = append(app.Commands,
		&ucli.Command{
			Name:  "daemon",
			Usage: "run the daemon in the foreground (for systemd, launchd, containers)",
			Description: "Logs go to standard error. SIGTERM or SIGINT drains requests in flight (up to [daemon] drain_timeout) " +
				"and exits 0; SIGHUP re-reads the keyfile. Exits 4 if the keyfile is invalid, 1 if the port is taken or " +
				"another daemon runs (with --wait, it waits for that one to exit instead, and then serves: the service files use it, " +
				"so that a service's daemon never fights one llmkey started).",
			Flags: []ucli.Flag{
				&ucli.IntFlag{Name: "ready-fd", Hidden: true, Usage: "write ready or the start error to this fd"},
				&ucli.BoolFlag{Name: "log-file", Usage: "log to daemon.log in the state directory instead of standard error (re-created if removed)"},
				&ucli.BoolFlag{Name: "wait", Usage: "if another daemon runs, wait until it exits, then serve"},
				&ucli.IntFlag{Name: "listen-fd", Hidden: true, Usage: "serve the proxy's listening socket at this fd (restart hands it on)"},
			},
			Action: withPaths(func(c *ucli.Context, p state.Paths) error {
				return DaemonCommand(DaemonCommandInput{Paths: p, ReadyFD: c.Int("ready-fd"), LogFile: c.Bool("log-file"), Wait: c.Bool("wait"),
					ListenFD: c.Int("listen-fd")}, streams(c))
			}),
		},
		&ucli.Command{
			Name:        "start",
			Usage:       "start the daemon in the background, if it is not running",
			Description: "Returns once the daemon is ready. Its log is daemon.log in the state directory.",
			Action: withPaths(func(c *ucli.Context, p state.Paths) error {
				return StartCommand(c.Context, p, streams(c))
			}),
		},
		&ucli.Command{
			Name:        "stop",
			Usage:       "stop the daemon after the requests in flight finish",
			Description: "Waits until the daemon has exited. Not running is not an error.",
			Action: withPaths(func(c *ucli.Context, p state.Paths) error {
				_, err := StopCommand(c.Context, p, streams(c))
				return err
			}),
		},
		&ucli.Command{
			Name:  "restart",
			Usage: "stop the daemon (draining it) and start it again",
			Description: "The proxy's port is handed on from the running daemon to the next and never let go: connections " +
				"made meanwhile wait for the next daemon, and no other program can take the port in between.",
			Action: withPaths(func(c *ucli.Context, p state.Paths) error {
				return RestartCommand(c.Context, p, streams(c))
			}),
		},
		&ucli.Command{
			Name:  "reload",
			Usage: "make the daemon re-read the keyfile now",
			Description: "The daemon also reloads by itself within a moment of any change. An invalid keyfile is " +
				"reported (exit 4) and the daemon keeps serving the last good one.",
			Action: withPaths(func(c *ucli.Context, p state.Paths) error {
				return ReloadCommand(c.Context, p, streams(c))
			}),
		},
	)
}

// DaemonCommandInput is what "llmkey daemon" was asked to do.
type DaemonCommandInput struct {
	Paths   state.Paths
	ReadyFD int  // the spawning CLI's pipe: "ready" or why not; 0: none
	LogFile bool // log to daemon.log instead of standard error
	Wait    bool // another daemon runs: wait for it to exit, then serve
	// ListenFD is the proxy's listening socket that restart hands on
	// from the daemon before; 0: none.
	ListenFD int
}

// DaemonCommand runs the daemon in this process until it is stopped.
func DaemonCommand(in DaemonCommandInput, s Streams) error {
	p, readyFD := in.Paths, in.ReadyFD
	// The log is written off the request path either way.
	out, to := daemon.NewLogWriter(s.Err), stderrLog(p)
	if in.LogFile {
		out, to = daemon.OpenLogFile(p.LogPath()), control.LogStatus{Path: p.LogPath()}
	}
	defer out.Close()
	log := slog.New(slog.NewTextHandler(out, nil))
	var ready func(*control.StartError)
	var waiting func()
	if readyFD > 0 {
		syscall.CloseOnExec(readyFD) // a secret_cmd's process must not keep the CLI waiting
		f := os.NewFile(uintptr(readyFD), "ready")
		ready = func(e *control.StartError) { control.WriteReady(f, e) }
		waiting = func() { control.WriteWaiting(f) }
	}
	return daemon.Run(daemon.Options{Paths: p, Version: Version, Log: log, LogTo: to, Spawned: readyFD > 0, WaitForLock: in.Wait,
		Waiting: waiting, ListenFD: in.ListenFD, Ready: ready})
}

// stderrLog is where a log on standard error ends up: systemd's journal
// when systemd connected it there (it says so in JOURNAL_STREAM, the
// device and inode of that stream), a file when a service manager points
// it at one (launchd's StandardErrorPath), or neither.
func stderrLog(p state.Paths) control.LogStatus {
	fi, err := os.Stderr.Stat()
	if err != nil {
		return control.LogStatus{}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":"); ok && dev == strconv.FormatUint(uint64(st.Dev), 10) && ino == strconv.FormatUint(uint64(st.Ino), 10) {
			return control.LogStatus{JournalUnit: systemdUnit()}
		}
	}
	if !fi.Mode().IsRegular() {
		return control.LogStatus{}
	}
	// Its path: Linux names it; else the one the launchd agent sets.
	candidates := []string{state.LaunchdLogFile(p.StateDir)}
	if link, err := os.Readlink("/proc/self/fd/2"); err == nil && filepath.IsAbs(link) {
		candidates = append([]string{link}, candidates...)
	}
	for _, c := range candidates {
		if cfi, err := os.Stat(c); err == nil && os.SameFile(cfi, fi) {
			return control.LogStatus{Path: c}
		}
	}
	return control.LogStatus{}
}

// systemdUnit is the service this process runs as, from its cgroup
// (".../app.slice/llmkey.service"), or llmkey.service, the one service
// install writes.
func systemdUnit() string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	unit := "llmkey.service"
	for _, line := range strings.Split(string(b), "\n") {
		for _, part := range strings.Split(line, "/") {
			if strings.HasSuffix(part, ".service") && !strings.HasPrefix(part, "user@") {
				unit = part
			}
		}
	}
	return unit
}

// StartCommand makes sure the daemon runs.
func StartCommand(ctx context.Context, p state.Paths, s Streams) error {
	st, started, err := ensureDaemon(ctx, p)
	if err != nil {
		return err
	}
	if started {
		s.done("daemon started (pid %d), proxy at %s", st.PID, st.ProxyURL)
	} else {
		s.done("daemon already running (pid %d), proxy at %s", st.PID, st.ProxyURL)
	}
	warnVersion(s, st.Version)
	return nil
}

// StopCommand asks the daemon to drain and waits for it to exit. It
// reports whether one was running.
func StopCommand(ctx context.Context, p state.Paths, s Streams) (bool, error) {
	st, running, err := stopDaemon(ctx, p, s)
	if err == nil && st != nil && st.SocketActivated {
		s.info("its socket still listens and starts it again at the next connection (a tool's request, any llmkey command); systemctl --user stop llmkey.socket stops that too")
	}
	return running, err
}

// RestartCommand stops the daemon, draining it, and starts it again: by
// its socket when the service's socket started it (the start's own
// call is the connection that wakes it), else with this binary, which
// takes the proxy's port over from the running daemon without ever
// letting it go.
func RestartCommand(ctx context.Context, p state.Paths, s Streams) error {
	if st, err := control.NewClient(p).Status(ctx); err == nil && !st.SocketActivated {
		done, err := handOverRestart(ctx, p, st, s)
		if done || err != nil {
			return err
		}
	}
	_, running, err := stopDaemon(ctx, p, s)
	if err != nil {
		return err
	}
	st, _, err := ensureDaemon(ctx, p)
	if err != nil {
		return err
	}
	how := ""
	if st.SocketActivated {
		how = ", started by its socket"
	}
	if running {
		s.done("daemon restarted (pid %d%s), proxy at %s", st.PID, how, st.ProxyURL)
	} else {
		s.done("daemon started (pid %d%s), proxy at %s", st.PID, how, st.ProxyURL)
	}
	warnVersion(s, st.Version)
	return nil
}

// handOverRestart restarts the daemon whose status is old, the next one
// taking its port over. It reports false when that daemon cannot hand
// its port on (a version from before it could) or is gone, and has
// stopped nothing.
func handOverRestart(ctx context.Context, p state.Paths, old *control.Status, s Streams) (bool, error) {
	exe, err := os.Executable()
	if err != nil {
		return false, fmt.Errorf("find the llmkey binary to start the daemon: %w", err)
	}
	ho, err := control.Restart(ctx, p, exe, func() error { return waitStopped(p, old, s) })
	switch {
	case errors.Is(err, control.ErrNoHandOver):
		s.info("the daemon running (version %s) cannot hand its port on to the next one: the port is let go for a moment", old.Version)
		return false, nil
	case errors.Is(err, control.ErrNotRunning): // it exited meanwhile
		return false, nil
	}
	if err != nil {
		return true, err
	}
	st, err := control.NewClient(p).Status(ctx)
	if err != nil {
		return true, err
	}
	if "http://"+ho.Proxy == st.ProxyURL {
		s.done("daemon restarted (pid %d), proxy at %s: its port was handed on, never closed", st.PID, st.ProxyURL)
	} else {
		s.done("daemon restarted (pid %d), proxy at %s, no longer at %s ([daemon] listen changed)", st.PID, st.ProxyURL, "http://"+ho.Proxy)
	}
	warnVersion(s, st.Version)
	return true, sameKeyfile(st, p)
}

// stopDaemon stops the daemon, and returns its status from before and
// whether one was running.
func stopDaemon(ctx context.Context, p state.Paths, s Streams) (*control.Status, bool, error) {
	c := control.NewClient(p)
	st, _ := c.Status(ctx)
	err := c.Stop(ctx)
	if errors.Is(err, control.ErrNotRunning) {
		s.info("daemon was not running")
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return st, true, waitStopped(p, st, s)
}

// waitStopped waits for the daemon of status st (nil: not known),
// asked to stop, to exit.
func waitStopped(p state.Paths, st *control.Status, s Streams) error {
	// Quiet when it is quick; past a moment, say what it waits for.
	pid := 0
	if st != nil {
		pid = st.PID
	}
	if control.WaitStopped(p, pid, stopQuiet) != nil {
		holder, what := control.LockHolder(p.LockPath()), "its last writes"
		if st != nil && st.InFlight > 0 {
			what = fmt.Sprintf("%d request(s) in flight to finish (drain_timeout at most)", st.InFlight)
		}
		s.info("stopping the daemon (pid %d): waiting for %s; kill %d ends them now", holder, what, holder)
		if err := control.WaitStopped(p, pid, stopTimeout); err != nil {
			return fail("see its log (llmkey logs); kill -9 ends it, losing nothing written", "%v", err)
		}
	}
	s.done("daemon stopped")
	return nil
}

// ReloadCommand re-reads the keyfile in the daemon.
func ReloadCommand(ctx context.Context, p state.Paths, s Streams) error {
	st, err := control.NewClient(p).Reload(ctx)
	if errors.Is(err, control.ErrNotRunning) {
		return notRunningError()
	}
	if err != nil {
		return err
	}
	if kf := st.Keyfile; kf != nil && kf.Error != "" {
		then := "the daemon serves no keys until it is fixed"
		if kf.ServingLastGood {
			then = "the daemon keeps serving the last good keyfile"
		}
		return &Error{Err: fmt.Errorf("%s; %s", kf.Error, then), Hint: kf.Hint, Code: ExitKeyfile}
	}
	n := 0
	for _, ps := range st.Providers {
		n += len(ps.Keys)
	}
	s.done("reloaded %s: %d keys", p.Keyfile, n)
	return nil
}

// ensureDaemon starts the daemon if needed, with this very binary, and
// makes sure it serves the keyfile this command names.
func ensureDaemon(ctx context.Context, p state.Paths) (*control.Status, bool, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, false, fmt.Errorf("find the llmkey binary to start the daemon: %w", err)
	}
	st, started, err := control.EnsureRunning(ctx, p, exe)
	if woken, ok := wakeService(ctx, p, err); ok {
		st, err = woken, nil
	}
	if err == nil {
		err = sameKeyfile(st, p)
	}
	return st, started, err
}

// wakeService answers a daemon that could not start because the port was
// taken, when the service's socket unit is what holds it: its control
// socket was removed (see the daemon's replacedUnitSocket), so the CLI
// could not reach it there. A connection to the port still wakes the
// service's daemon, which then makes a control socket of its own. A port
// another user holds is not the unit's: nothing connects to it.
func wakeService(ctx context.Context, p state.Paths, err error) (*control.Status, bool) {
	var se *control.StartError
	if runtime.GOOS != "linux" || !errors.As(err, &se) || !se.PortTaken || se.OtherUser {
		return nil, false
	}
	here, ferr := serviceFilesHere(p)
	if ferr != nil || !slices.ContainsFunc(here.files, written) {
		return nil, false
	}
	c, derr := net.DialTimeout("tcp", here.listen, time.Second)
	if derr != nil {
		return nil, false
	}
	c.Close()
	client := control.NewClient(p)
	for deadline := time.Now().Add(control.StartTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, serr := client.Status(ctx); serr == nil {
			return st, true
		}
	}
	return nil, false
}

// sameKeyfile refuses a daemon that serves another keyfile than the one
// this command names: its keys must never serve this command's tools.
func sameKeyfile(st *control.Status, p state.Paths) error {
	if st == nil || st.Keyfile == nil || samePath(st.Keyfile.Path, p.Keyfile) {
		return nil
	}
	return &Error{Err: fmt.Errorf("the running daemon serves the keyfile %s, not %s", st.Keyfile.Path, p.Keyfile),
		Hint: "one daemon serves one keyfile: use that keyfile, or stop the daemon (llmkey stop) and run this again to start one on yours",
		Code: ExitFailure}
}

// samePath reports whether a and b name the same file, links followed.
func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, erra := filepath.EvalSymlinks(a)
	rb, errb := filepath.EvalSymlinks(b)
	return erra == nil && errb == nil && ra == rb
}

func notRunningError() error {
	return &Error{Err: control.ErrNotRunning, Hint: "start it: llmkey start", Code: ExitNotRunning}
}

// warnVersion says when the daemon is another version than this CLI:
// after an upgrade the old daemon keeps running until restarted.
func warnVersion(s Streams, v string) {
	if v != "" && v != Version {
		fmt.Fprintf(s.Err, "llmkey: warning: the daemon runs version %s, this is %s\nhint: restart it to use this version: llmkey restart\n", v, Version)
	}
}
