// SPDX-License-Identifier: MIT

package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llmkey/llmkey/state"
)

// StartError is why a daemon could not start, carried to the CLI that
// spawned it.
type StartError struct {
	Message string `json:"error"`
	Hint    string `json:"hint,omitempty"`
	// Keyfile is set when the keyfile was the reason, for the exit code.
	Keyfile bool `json:"keyfile,omitempty"`
	// Running is set when another daemon already serves.
	Running bool `json:"running,omitempty"`
	// PortTaken is set when the proxy's port was taken (by a socket
	// unit, when it is the service's).
	PortTaken bool `json:"port_taken,omitempty"`
	// OtherUser is set when another user holds the port.
	OtherUser bool `json:"port_other_user,omitempty"`
}

func (e *StartError) Error() string    { return e.Message }
func (e *StartError) HintText() string { return e.Hint }

// StartTimeout bounds how long a CLI waits for a daemon it spawned.
const StartTimeout = 15 * time.Second

// EnsureRunning returns the status of the running daemon, starting one in
// the background first if none runs. Concurrent callers serialize on a
// spawn lock, so twenty cold "llmkey exec" start exactly one daemon. It
// reports whether it started one.
func EnsureRunning(ctx context.Context, paths state.Paths, exe string) (*Status, bool, error) {
	c := NewClient(paths)
	st, err := c.Status(ctx)
	var ue *UnreachableError
	if errors.As(err, &ue) {
		// The runtime dir's own problem says more than the dial's.
		if derr := state.EnsureRuntimeDir(paths.RuntimeDir); derr != nil {
			return nil, false, derr
		}
		return nil, false, err
	}
	if !errors.Is(err, ErrNotRunning) {
		return st, false, err
	}
	if err := state.EnsureRuntimeDir(paths.RuntimeDir); err != nil {
		return nil, false, err
	}
	lock, err := spawnLock(paths)
	if err != nil {
		return nil, false, err
	}
	defer lock.Close()
	// Whoever held the lock before us may have started it.
	if st, err := c.Status(ctx); !errors.Is(err, ErrNotRunning) {
		return st, false, err
	}
	if err := spawn(paths, exe); err != nil {
		var se *StartError
		if !errors.As(err, &se) || !se.Running {
			if se == nil || se.Keyfile {
				return nil, false, err
			}
			// A daemon whose runtime dir was just removed puts its
			// socket back within a moment (its keeper), and ours then
			// failed on its port: that daemon is the answer.
			for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if st, serr := c.Status(ctx); serr == nil {
					return st, false, nil
				}
			}
			return nil, false, err
		}
		// A daemon started outside our lock (llmkey daemon, systemd):
		// it holds the daemon lock and will answer in a moment.
	}
	deadline := time.Now().Add(StartTimeout)
	for {
		st, err := c.Status(ctx)
		if !errors.Is(err, ErrNotRunning) || time.Now().After(deadline) {
			return st, err == nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// spawnLock takes the lock that the CLIs which start a daemon take in
// turn, so that only one of them does.
func spawnLock(paths state.Paths) (*os.File, error) {
	lock, err := os.OpenFile(paths.SpawnLockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open spawn lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("take spawn lock: %w", err)
	}
	return lock, nil
}

// spawn starts "llmkey daemon" and waits for its own word on a pipe,
// "ready" or why not, the way git credential-cache waits for its daemon.
func spawn(paths state.Paths, exe string) error {
	dp, err := startDaemon(paths, exe, nil)
	if err != nil {
		return err
	}
	line, err := dp.say(StartTimeout)
	return dp.result(line, err)
}

// daemonProcess is a daemon the CLI started, and what it says on its
// ready pipe.
type daemonProcess struct {
	cmd    *exec.Cmd
	paths  state.Paths
	lines  chan string // each line it says; closed when it closes the pipe
	exited chan struct{}
}

// startDaemon starts "llmkey daemon" detached: a new session (no
// terminal signals reach it), stdin from /dev/null, output appended to
// the log file. Given the proxy's listening socket (a restart's), it is
// the next daemon: it serves that socket once the running one exits.
func startDaemon(paths state.Paths, exe string, listener *os.File) (*daemonProcess, error) {
	if err := state.EnsurePrivateDir(paths.StateDir); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(paths.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("make ready pipe: %w", err)
	}
	args, files := []string{"--keyfile", paths.Keyfile, "daemon", "--ready-fd", "3", "--log-file"}, []*os.File{pw}
	if listener != nil {
		args, files = append(args, "--wait", "--listen-fd", "4"), append(files, listener)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/" // not the CLI's directory, which it would keep busy
	cmd.Env = daemonEnv(os.Environ(), paths)
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	dp := &daemonProcess{cmd: cmd, paths: paths, lines: make(chan string, 2), exited: make(chan struct{})}
	go func() { cmd.Wait(); close(dp.exited) }() // reap it if it dies
	go func() {
		defer close(dp.lines)
		defer pr.Close()
		for r := bufio.NewReader(pr); ; {
			s, err := r.ReadString('\n')
			if s != "" {
				dp.lines <- strings.TrimSpace(s)
			}
			if err != nil {
				return
			}
		}
	}()
	return dp, nil
}

// daemonEnv is the environment of a daemon the CLI starts: of environ,
// the caller's, only what the daemon and the commands it runs (a
// secret_cmd, the keychain over D-Bus) need, and its paths. The caller
// may be a tool under exec: its proxy variables, CA files, Go runtime
// settings or preloaded libraries would otherwise steer the daemon's
// upstream traffic, real keys in it, wherever the tool chose.
func daemonEnv(environ []string, paths state.Paths) []string {
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(daemonEnvNames, name) || strings.HasPrefix(name, "LC_") || strings.HasPrefix(name, "XDG_") {
			env = append(env, kv)
		}
	}
	return append(env, "LLMKEY_STATE_DIR="+paths.StateDir, "LLMKEY_RUNTIME_DIR="+paths.RuntimeDir)
}

// daemonEnvNames are the variables daemonEnv keeps, besides LC_* and
// XDG_*: who and where the user is, the locale, the session bus (the
// keychain), pass's and GnuPG's homes (secret_cmd), and what only race
// and coverage builds read.
var daemonEnvNames = []string{"HOME", "USER", "LOGNAME", "PATH", "TMPDIR", "LANG", "LANGUAGE", "TZ",
	"DBUS_SESSION_BUS_ADDRESS", "GNUPGHOME", "PASSWORD_STORE_DIR", "GORACE", "GOCOVERDIR"}

// say is the daemon's next line: "" when it closed the pipe first, an
// error when it said nothing within timeout.
func (dp *daemonProcess) say(timeout time.Duration) (string, error) {
	select {
	case s := <-dp.lines:
		return s, nil
	case <-time.After(timeout):
		return "", &StartError{Message: fmt.Sprintf("the daemon did not become ready within %s", timeout),
			Hint: "see its log: " + dp.paths.LogPath()}
	}
}

// result is what the daemon's last line means: nil for "ready", else
// why it did not start. A daemon that could not start is on its way
// out; it is reported once it is gone, so that nothing of it outlives
// the CLI. One that says nothing more is stopped.
func (dp *daemonProcess) result(line string, err error) error {
	if err == nil {
		err = readyResult(line, dp.paths)
	}
	if err != nil {
		select {
		case <-dp.exited:
		case <-time.After(2 * time.Second):
			dp.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	return err
}

// readyResult interprets the daemon's one line: "ready" or a JSON
// StartError. An empty line means it died before saying anything.
func readyResult(s string, paths state.Paths) error {
	s = strings.TrimSpace(s)
	switch {
	case s == "ready":
		return nil
	case s == "":
		return &StartError{Message: "the daemon exited before it was ready", Hint: "see its log: " + paths.LogPath()}
	}
	var se StartError
	if err := json.Unmarshal([]byte(s), &se); err != nil {
		return &StartError{Message: "the daemon said: " + s, Hint: "see its log: " + paths.LogPath()}
	}
	return &se
}

// WriteReady is the daemon's side of the pipe: "ready", or why not.
func WriteReady(f *os.File, e *StartError) {
	if e == nil {
		f.WriteString("ready\n")
	} else {
		b, _ := json.Marshal(e)
		f.Write(append(b, '\n'))
	}
	f.Close()
}

// WaitStopped waits until the daemon pid (0: any) no longer holds the
// daemon lock: the process has exited, not merely closed its socket, so
// a new one can start. Another pid holding it is a daemon that took over
// (one a service manager started with --wait).
func WaitStopped(paths state.Paths, pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(paths.LockPath(), os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open daemon lock: %w", err)
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		f.Close() // releases our lock at once, if we got it
		if err == nil || pid != 0 && LockHolder(paths.LockPath()) != pid {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon (pid %d) is still running after %s", LockHolder(paths.LockPath()), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LockHolder reads the pid the daemon wrote in its lock file, or 0.
func LockHolder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
