package daemon

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmkey/llmkey/state"
)

// LogFile is the daemon's log file, written off the request path: Write
// queues a copy of the line and returns at once, and one goroutine writes
// the queue out. A full queue (a stuck or failing disk) drops lines and
// counts them rather than slow a request down. The file is opened again
// when it, or its directory, is removed or replaced, and after a failed
// write.
type LogFile struct {
	path    string    // "" for a fixed writer, never reopened
	fixed   io.Writer // when path is ""
	lines   chan []byte
	done    chan struct{}
	closed  sync.Once
	dropped atomic.Int64

	// Owned by the writer goroutine.
	f        *os.File
	nextOpen time.Time
}

const (
	logQueue      = 4096
	logBatch      = 64 << 10
	logCheckEvery = 250 * time.Millisecond
)

// OpenLogFile starts writing the log to path.
func OpenLogFile(path string) *LogFile {
	l := &LogFile{path: path, lines: make(chan []byte, logQueue), done: make(chan struct{})}
	l.reopen()
	go l.run()
	return l
}

// NewLogWriter queues lines for w (standard error, say) the same way:
// a slow reader of w never slows a request.
func NewLogWriter(w io.Writer) *LogFile {
	l := &LogFile{fixed: w, lines: make(chan []byte, logQueue), done: make(chan struct{})}
	go l.run()
	return l
}

// Write queues p; it never blocks and never fails.
func (l *LogFile) Write(p []byte) (int, error) {
	b := make([]byte, len(p))
	copy(b, p)
	select {
	case l.lines <- b:
	default:
		l.dropped.Add(1)
	}
	return len(p), nil
}

// Dropped is how many lines were dropped because the queue was full.
func (l *LogFile) Dropped() int64 { return l.dropped.Load() }

// Close writes out what is queued and closes the file.
func (l *LogFile) Close() error {
	l.closed.Do(func() { close(l.lines) })
	<-l.done
	return nil
}

func (l *LogFile) run() {
	defer close(l.done)
	t := time.NewTicker(logCheckEvery)
	defer t.Stop()
	var batch []byte
	for {
		select {
		case b, ok := <-l.lines:
			if !ok {
				if l.f != nil {
					l.f.Close()
				}
				return
			}
			// Under load lines queue up: they go out in one write.
			batch = append(batch[:0], b...)
		more:
			for len(batch) < logBatch {
				select {
				case b, ok := <-l.lines:
					if !ok {
						break more // closed: the next receive ends the loop
					}
					batch = append(batch, b...)
				default:
					break more
				}
			}
			l.write(batch)
		case <-t.C:
			if l.path != "" && !sameFile(l.f, l.path) {
				l.reopen()
			}
		}
	}
}

func (l *LogFile) write(b []byte) {
	if l.path == "" {
		if _, err := l.fixed.Write(b); err != nil {
			l.dropped.Add(1)
		}
		return
	}
	if l.f == nil && !l.reopen() {
		l.dropped.Add(1)
		return
	}
	if _, err := l.f.Write(b); err != nil {
		l.f.Close()
		l.f = nil
		l.dropped.Add(1)
	}
}

// reopen opens the file anew, at most once per logCheckEvery after a
// failure; it reports whether a file is open.
func (l *LogFile) reopen() bool {
	now := time.Now()
	if l.f == nil && now.Before(l.nextOpen) {
		return false
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if err := state.EnsurePrivateDir(filepath.Dir(l.path)); err == nil {
		l.f, err = os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err == nil {
			return true
		}
		l.f = nil
	}
	l.nextOpen = now.Add(logCheckEvery)
	return false
}
