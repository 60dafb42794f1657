// SPDX-License-Identifier: MIT

package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// errLocked means another daemon holds the lock.
var errLocked = errors.New("another llmkey daemon is running")

// lock takes the runtime dir's lock, which makes this the one daemon
// the CLI reaches (waiting for another daemon to exit first, with
// WaitForLock), then the state dir's: one state dir, one writer, as two
// daemons on it would each write its usage over the other's, and each
// enforce the limits alone. It reports false when it has not both:
// with the reason it could not start, or nil when stopped while waiting.
func (d *Daemon) lock() (bool, error) {
	p := d.opts.Paths
	if err := state.EnsureRuntimeDir(p.RuntimeDir); err != nil {
		return false, d.fail(startError(err, false))
	}
	lock, err := acquireLock(p.LockPath())
	if errors.Is(err, errLocked) && d.opts.WaitForLock {
		d.log.Info("another llmkey daemon serves; this one serves once it exits", "pid", control.LockHolder(p.LockPath()))
		if d.opts.Waiting != nil {
			d.opts.Waiting()
		}
		if lock, err = waitForLock(p.LockPath()); lock == nil && err == nil {
			d.log.Info("stopped while waiting")
			return false, nil
		}
	}
	if err != nil {
		return false, d.fail(lockError(err, p.LockPath(), func(pid int) *control.StartError {
			return &control.StartError{Message: fmt.Sprintf("another llmkey daemon is running (pid %d)", pid),
				Hint: "use it, or stop it first: llmkey stop", Running: true}
		}))
	}
	d.runtime.lock = lock
	if err := state.EnsurePrivateDir(p.StateDir); err != nil {
		d.unlock()
		return false, d.fail(startError(err, false))
	}
	slock, err := acquireLock(p.StateLockPath())
	if err != nil {
		d.unlock()
		return false, d.fail(lockError(err, p.StateLockPath(), func(pid int) *control.StartError {
			return &control.StartError{Message: fmt.Sprintf("another llmkey daemon (pid %d) uses the state dir %s", pid, p.StateDir),
				Hint: "one daemon writes one state dir: stop that one (it has another runtime dir), or give this one its own LLMKEY_STATE_DIR"}
		}))
	}
	d.runtime.stateLock = slock
	return true, nil
}

// lockError is why a lock at path was not taken: held by another
// daemon (held says it, with that daemon's pid), or the error.
func lockError(err error, path string, held func(pid int) *control.StartError) *control.StartError {
	if errors.Is(err, errLocked) {
		return held(control.LockHolder(path))
	}
	return startError(err, false)
}

// unlock lets go of the locks the daemon holds; the keeper may have
// replaced them, which is why they are read only now.
func (d *Daemon) unlock() {
	for _, f := range []*os.File{d.runtime.stateLock, d.runtime.lock} {
		if f != nil {
			f.Close()
		}
	}
}

// acquireLock takes the daemon's lifetime lock without waiting. The
// kernel drops an flock when its holder dies, even by SIGKILL, so a lock
// file left behind is never stale; only the socket can be, and it is
// removed after the lock is ours (after mutagen's pkg/daemon/lock.go).
func acquireLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	writePID(f)
	return f, nil
}

// writePID puts this process's pid in the lock file f it holds: it is for
// people and for "stop"; the lock itself is the truth.
func writePID(f *os.File) {
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
}

// waitForLock waits until the lock at path is free and takes it, or
// returns nil, nil on SIGTERM or SIGINT. The lock file put back by its
// holder's keeper is another file: the lock taken is on the one that is
// at path when it is taken.
func waitForLock(path string) (*os.File, error) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(stop)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open lock %s: %w", path, err)
		}
		locked := make(chan error, 1)
		go func() { locked <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
		select {
		case <-stop:
			return nil, nil // the blocked flock ends with the process
		case err := <-locked:
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("lock %s: %w", path, err)
			}
		}
		fi, ferr := f.Stat()
		pi, perr := os.Stat(path)
		if ferr == nil && perr == nil && os.SameFile(fi, pi) {
			writePID(f)
			return f, nil
		}
		f.Close() // a lock on a file no longer there: again
	}
}
