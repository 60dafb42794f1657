// SPDX-License-Identifier: MIT

package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/llmkey/llmkey/state"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Writes that fail back off and are logged once, the counts stay in
// memory, and all of it is written once the disk takes writes again.
func TestKeeperBacksOffAndCatchesUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	os.WriteFile(dir, []byte("a file"), 0o600)
	var logs syncBuffer
	d := newDaemon(Options{Paths: state.Paths{StateDir: dir}, Log: slog.New(slog.NewTextHandler(&logs, nil))}, systemClock{})
	d.proxy.Token = "llmk-local-test"
	row := state.UsageKey{Provider: "openai", Key: "a", Fingerprint: "f", Model: "m"}
	d.usage.Add(d.clock.Now(), row, state.Counts{Requests: 1, Successes: 1, Input: 5})

	for range 50 { // a busy keeper: one try, then the backoff holds
		d.keepState(false)
	}
	if n := d.metrics.stateWriteFailures.Value(); n != 1 {
		t.Errorf("%v write attempts within the backoff, want 1", n)
	}
	_, problem := d.stateStatus()
	if !strings.Contains(problem, "state not persisted since") || !strings.Contains(problem, "not a directory") {
		t.Errorf("problem: %q", problem)
	}
	time.Sleep(2 * keepEvery)
	d.keepState(false)
	if n := d.metrics.stateWriteFailures.Value(); n != 2 || strings.Count(logs.String(), "could not write state") != 1 {
		t.Errorf("after the backoff: %v attempts, log:\n%s", n, logs.String())
	}

	d.usage.Add(d.clock.Now(), row, state.Counts{Requests: 1, Successes: 1, Input: 7})
	os.Remove(dir)
	d.persist.mu.Lock()
	wait := d.persist.backoff
	d.persist.mu.Unlock()
	time.Sleep(wait + 20*time.Millisecond)
	d.keepState(false)
	if _, problem := d.stateStatus(); problem != "" {
		t.Fatalf("still failing: %s", problem)
	}
	u, err := state.LoadUsageDir(dir)
	if err != nil || len(u.Rows) != 1 || u.Rows[0].Requests != 2 || u.Rows[0].Input != 12 {
		t.Errorf("usage after the outage: %+v %v", u, err)
	}
	if tok, _ := os.ReadFile(state.TokenFile(dir)); strings.TrimSpace(string(tok)) != "llmk-local-test" {
		t.Errorf("token after the outage: %q", tok)
	}
	if !strings.Contains(logs.String(), "state written again") {
		t.Errorf("no word of the recovery:\n%s", logs.String())
	}
}

// Under steady traffic the usage files are written at most once every
// keepEvery: the keeper's own rename of a temporary file into place is
// a write, not a removal that makes it look again at once.
func TestKeeperWritesAtItsPaceUnderLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d := newDaemon(Options{Paths: state.Paths{StateDir: dir, RuntimeDir: filepath.Join(t.TempDir(), "run")}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, systemClock{})
	d.proxy.Token = "llmk-local-test"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.runtime.serve = func(ln net.Listener) { <-ctx.Done(); ln.Close() }
	d.keepState(true)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Skip("no file notifications here:", err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	go d.keep(ctx)
	row := state.UsageKey{Provider: "openai", Key: "a", Fingerprint: "f", Model: "m"}
	const span = 2 * time.Second
	writes := 0
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for end := time.After(span); ; {
		select {
		case <-tick.C:
			d.usage.Add(d.clock.Now(), row, state.Counts{Requests: 1, Successes: 1, Input: 5})
			continue
		case ev := <-w.Events:
			if ev.Name == state.UsageRecentFile(dir) && ev.Has(fsnotify.Create) {
				writes++
			}
			continue
		case <-end:
		}
		break
	}
	if most := int(span/keepEvery) + 2; writes > most || writes == 0 {
		t.Errorf("usage-recent.json written %d times in %s of steady traffic, want at most %d (once every %s)", writes, span, most, keepEvery)
	}
}
