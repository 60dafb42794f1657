package daemon

import (
	"errors"
	"fmt"
	"os"
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
	// The pid in the lock file is for people and for "stop"; the lock
	// itself is the truth.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}
