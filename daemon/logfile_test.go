// SPDX-License-Identifier: MIT

package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The log never blocks a request: with the file unwritable (its directory
// is a file), writes return at once; once the path is usable again, the
// file comes back.
func TestLogFileNeverBlocksAndComesBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	os.WriteFile(dir, []byte("a file where the dir should be"), 0o600)
	lf := OpenLogFile(filepath.Join(dir, "daemon.log"))
	defer lf.Close()
	start := time.Now()
	for range 3 * logQueue {
		lf.Write([]byte("a line that cannot be written\n"))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("%d writes took %v with the disk refusing them", 3*logQueue, d)
	}
	if lf.Dropped() == 0 {
		t.Error("no line counted as dropped")
	}
	logPath := filepath.Join(dir, "daemon.log")
	os.Remove(dir)
	waitForLine(t, lf, logPath, "back")
	// Removed while open: written to anew, not into the unlinked file.
	os.RemoveAll(dir)
	waitForLine(t, lf, logPath, "again")
}

// waitForLine writes line to lf until it shows in the file at path.
func waitForLine(t *testing.T, lf *LogFile, path, line string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lf.Write([]byte(line + "\n"))
		if b, _ := os.ReadFile(path); strings.Contains(string(b), line) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never reached %s", line, path)
		}
	}
}

// A burst of lines with the same level and message is folded: the first
// line, and one that says how many followed; other lines are kept.
func TestLogFoldsBursts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	lf := OpenLogFile(path)
	for i := range 5000 {
		fmt.Fprintf(lf, "time=2026-12-01T10:00:00.000Z level=INFO msg=\"no usable key\" provider=openai retry_after=%ds\n", i)
		fmt.Fprintf(lf, "time=2026-12-01T10:00:00.000Z level=WARN msg=\"attempt failed\" key=a attempt=%d\n", i)
		if i%1000 == 0 { // the writer keeps up; nothing is dropped
			time.Sleep(10 * time.Millisecond)
		}
	}
	fmt.Fprintf(lf, "time=2026-12-01T10:00:01.000Z level=INFO msg=ready\n")
	for range 2 { // lines of [daemon] log_requests are kept, each
		fmt.Fprintf(lf, "time=2026-12-01T10:00:01.000Z level=INFO msg=request key=a\n")
	}
	lf.Close()
	if lf.Dropped() != 0 {
		t.Fatalf("%d lines dropped", lf.Dropped())
	}
	b, _ := os.ReadFile(path)
	log := string(b)
	lines := strings.Count(log, "\n")
	if lines != 7 || !strings.Contains(log, `repeats=4999 of="no usable key"`) || !strings.Contains(log, `repeats=4999 of="attempt failed"`) ||
		!strings.Contains(log, "retry_after=0s") || !strings.Contains(log, "msg=ready") {
		t.Errorf("%d lines:\n%s", lines, log)
	}
}

// daemon.log is capped: past its size it becomes daemon.log.1 and a new
// one starts.
func TestLogIsCapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.log")
	const max = 64 << 10
	lf := openLogFile(path, max)
	for i := range 20000 { // 2 MB of distinct lines
		fmt.Fprintf(lf, "time=2026-12-01T10:00:00.000Z level=INFO msg=m%d padding=%080d\n", i, i)
		if i%500 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	lf.Close()
	for _, p := range []string{path, path + ".1"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > max+logBatch+1024 {
			t.Errorf("%s: %v %d bytes", p, err, fi.Size())
		}
	}
}
