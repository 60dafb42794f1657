// SPDX-License-Identifier: MIT

package daemon

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
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
	size     int64 // of f, to rotate it at maxSize
	maxSize  int64
	nextOpen time.Time
	fold     folder
	out      []byte
}

const (
	logQueue      = 4096
	logBatch      = 64 << 10
	logCheckEvery = 250 * time.Millisecond // how soon a failed open is tried again
	// logMaxSize caps daemon.log: past it the file becomes daemon.log.1
	// (replacing the one before) and a new one starts, so the log takes
	// twice this at most.
	logMaxSize = 8 << 20
)

// OpenLogFile starts writing the log to path.
func OpenLogFile(path string) *LogFile { return openLogFile(path, logMaxSize) }

func openLogFile(path string, maxSize int64) *LogFile {
	l := &LogFile{path: path, lines: make(chan []byte, logQueue), done: make(chan struct{}), maxSize: maxSize, fold: newFolder()}
	l.reopen()
	go l.run()
	return l
}

// NewLogWriter queues lines for w (standard error, say) the same way:
// a slow reader of w never slows a request.
func NewLogWriter(w io.Writer) *LogFile {
	l := &LogFile{fixed: w, lines: make(chan []byte, logQueue), done: make(chan struct{}), fold: newFolder()}
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
	var batch []byte
	// The fold's summaries are due a while after a burst; no timer runs
	// while nothing is folded.
	var flush <-chan time.Time
	for {
		select {
		case b, ok := <-l.lines:
			if !ok {
				l.write(l.fold.flush(time.Now(), true, nil))
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
			l.out = l.out[:0]
			now := time.Now()
			for line := range bytes.Lines(batch) {
				l.out = l.fold.add(line, now, l.out)
			}
			// A file removed or replaced since the last write is opened
			// anew: the check is one stat per batch written.
			if l.path != "" && l.f != nil && !sameFile(l.f, l.path) {
				l.reopen()
			}
			l.write(l.out)
			if flush == nil && l.fold.pending() {
				flush = time.After(foldWindow)
			}
		case <-flush:
			flush = nil
			if out := l.fold.flush(time.Now(), false, l.out[:0]); len(out) > 0 {
				l.write(out)
			}
			if l.fold.pending() {
				flush = time.After(foldWindow)
			}
		}
	}
}

func (l *LogFile) write(b []byte) {
	if len(b) == 0 {
		return
	}
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
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		l.f.Close()
		l.f = nil
		l.dropped.Add(1)
		return
	}
	if l.size > l.maxSize {
		l.f.Close()
		l.f = nil
		os.Rename(l.path, l.path+".1")
		l.reopen()
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
			l.size = 0
			if fi, err := l.f.Stat(); err == nil {
				l.size = fi.Size()
			}
			return true
		}
		l.f = nil
	}
	l.nextOpen = now.Add(logCheckEvery)
	return false
}

// folder folds bursts of log lines: of the lines with the same level and
// message in foldWindow, the first is written, and the others become one
// line that says how many there were (a provider failing for a minute
// wrote a line per request: 18 MiB in 10 s).
type folder struct {
	runs map[string]*foldRun
}

type foldRun struct {
	start time.Time
	more  int
	level string
	msg   []byte // as written: quoted where it has to be
}

const (
	foldWindow = 10 * time.Second
	foldRuns   = 256 // messages followed at once; more start again
)

func newFolder() folder { return folder{runs: map[string]*foldRun{}} }

// add appends to out what of line to write now.
func (f *folder) add(line []byte, now time.Time, out []byte) []byte {
	level, msg, ok := levelAndMessage(line)
	if !ok || string(msg) == "request" { // asked for one by one: [daemon] log_requests
		return append(out, line...)
	}
	key := level + " " + string(msg)
	if r := f.runs[key]; r != nil && now.Sub(r.start) < foldWindow {
		r.more++
		return out
	} else if r != nil && r.more > 0 {
		out = r.summary(now, out)
	}
	if len(f.runs) >= foldRuns {
		out = f.flush(now, true, out)
	}
	f.runs[key] = &foldRun{start: now, level: level, msg: append([]byte(nil), msg...)}
	return append(out, line...)
}

// pending reports whether a run has lines folded that are not yet said.
func (f *folder) pending() bool {
	for _, r := range f.runs {
		if r.more > 0 {
			return true
		}
	}
	return false
}

// flush appends the summaries of the runs whose window ended (all of
// them when force), and forgets those runs.
func (f *folder) flush(now time.Time, force bool, out []byte) []byte {
	for key, r := range f.runs {
		if force || now.Sub(r.start) >= foldWindow {
			if r.more > 0 {
				out = r.summary(now, out)
			}
			delete(f.runs, key)
		}
	}
	return out
}

func (r *foldRun) summary(now time.Time, out []byte) []byte {
	out = append(out, "time="...)
	out = now.AppendFormat(out, "2006-01-02T15:04:05.000Z07:00")
	out = append(out, " level="...)
	out = append(out, r.level...)
	out = append(out, " msg=\"the line before repeated\" repeats="...)
	out = strconv.AppendInt(out, int64(r.more), 10)
	out = append(out, " of="...)
	out = append(out, r.msg...)
	out = append(out, " within="...)
	out = append(out, foldWindow.String()...)
	return append(out, '\n')
}

// levelAndMessage reads level=X and msg=Y of a text-format slog line.
func levelAndMessage(line []byte) (level string, msg []byte, ok bool) {
	i := bytes.Index(line, []byte(" level="))
	j := bytes.Index(line, []byte(" msg="))
	if i < 0 || j < i {
		return "", nil, false
	}
	lv := line[i+len(" level=") : j]
	m := line[j+len(" msg="):]
	end := bytes.IndexAny(m, " \n")
	if len(m) > 0 && m[0] == '"' {
		end = -1
		for k := 1; k < len(m); k++ {
			if m[k] == '\\' {
				k++
			} else if m[k] == '"' {
				end = k + 1
				break
			}
		}
	}
	if end < 0 {
		end = len(m)
	}
	return string(lv), m[:end], true
}
