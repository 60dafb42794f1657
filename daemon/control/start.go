package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
	lock, err := os.OpenFile(paths.SpawnLockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open spawn lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, false, fmt.Errorf("take spawn lock: %w", err)
	}
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

// spawn starts "llmkey daemon" detached: a new session (no terminal
// signals reach it), stdin from /dev/null, output appended to the log
// file. It waits for the daemon's own word on a pipe, "ready" or why not,
// the way git credential-cache waits for its daemon.
func spawn(paths state.Paths, exe string) error {
	if err := state.EnsurePrivateDir(paths.StateDir); err != nil {
		return err
	}
	logf, err := os.OpenFile(paths.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("make ready pipe: %w", err)
	}
	defer pr.Close()

	cmd := exec.Command(exe, "--keyfile", paths.Keyfile, "daemon", "--ready-fd", "3", "--log-file")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/" // not the CLI's directory, which it would keep busy
	cmd.Env = append(os.Environ(), "LLMKEY_STATE_DIR="+paths.StateDir, "LLMKEY_RUNTIME_DIR="+paths.RuntimeDir)
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("start daemon: %w", err)
	}
	pw.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // reap it if it dies

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(pr).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		err := readyResult(s, paths)
		if err != nil {
			// A daemon that could not start is on its way out; report
			// once it is gone, so that nothing of it outlives the CLI.
			select {
			case <-exited:
			case <-time.After(2 * time.Second):
			}
		}
		return err
	case <-time.After(StartTimeout):
		return &StartError{Message: fmt.Sprintf("the daemon did not become ready within %s", StartTimeout),
			Hint: "see its log: " + paths.LogPath()}
	}
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
