// SPDX-License-Identifier: MIT

package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// maxOutput bounds what a secret_cmd may print: its secret is the first
// line, and the daemon holds what it reads in memory.
const maxOutput = 64 << 10

// maxStderr is how much of a failing command's standard error is kept,
// to show an excerpt of its first line.
const maxStderr = 4 << 10

// outputOpen is how long a secret_cmd's output may stay open after it
// exited (a child it left behind holds it): then it is read no more.
const outputOpen = time.Second

var errTooMuch = errors.New("output too large")

// readCommand runs argv and returns the first line of its output. It runs
// in a process group of its own, which is killed when it takes too long
// or prints too much, and when it leaves children behind that hold its
// output open.
func readCommand(parent context.Context, argv []string, known []string) (string, error) {
	ctx, cancel := context.WithTimeout(parent, CommandTimeout)
	defer cancel()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = outputOpen
	out := &capped{max: maxOutput, over: func() { stop(errTooMuch) }}
	errb := &capped{max: maxStderr}
	cmd.Stdout, cmd.Stderr = out, errb
	err := cmd.Run()
	name := argv[0]
	switch cause := context.Cause(ctx); {
	case cause == errTooMuch:
		return "", fmt.Errorf("secret_cmd %s printed more than %d KiB, output too large: a secret is the first line of its output", name, maxOutput>>10)
	case parent.Err() != nil:
		return "", fmt.Errorf("secret_cmd %s: %w", name, context.Cause(parent))
	case cause != nil:
		return "", fmt.Errorf("secret_cmd %s took longer than %s", name, CommandTimeout)
	case err != nil && cmd.Process != nil:
		// It exited, and may have left children holding its output.
		killGroup(cmd.Process)
		if errors.Is(err, exec.ErrWaitDelay) {
			break // it succeeded: what it printed is whole
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return "", fmt.Errorf("secret_cmd %s failed: %v", name, err)
		}
		// Its standard error may say why, and may as well hold the
		// secret: only a short excerpt, masked. Its output is never shown.
		if why := excerpt(errb.buf, known); why != "" {
			return "", fmt.Errorf("secret_cmd %s failed (%v): %s", name, exit, why)
		}
		return "", fmt.Errorf("secret_cmd %s failed (%v) and said nothing on its standard error: run it yourself to see why", name, exit)
	case err != nil:
		return "", fmt.Errorf("secret_cmd %s could not be run: %w", name, err)
	}
	s := strings.TrimSpace(strings.SplitN(string(out.buf), "\n", 2)[0])
	if s == "" {
		return "", fmt.Errorf("secret_cmd %s printed no secret", name)
	}
	return s, nil
}

// killGroup kills p's process group: p and whatever it started that did
// not leave it.
func killGroup(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return p.Kill()
	}
	return nil
}

// capped keeps the first max bytes written to it. Past them, over (when
// set) is called and the write fails, which ends the copying; without
// over, the rest is thrown away.
type capped struct {
	buf  []byte
	max  int
	over func()
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - len(c.buf)
	if len(p) <= room {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	c.buf = append(c.buf, p[:room]...)
	if c.over == nil {
		return len(p), nil
	}
	c.over()
	return room, errTooMuch
}
