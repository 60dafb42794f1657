package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

// errLocked means another daemon holds the lock.
var errLocked = errors.New("another llmkey daemon is running")

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
