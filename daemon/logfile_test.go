package daemon

import (
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
