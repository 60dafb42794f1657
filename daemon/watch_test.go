// SPDX-License-Identifier: MIT

package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/llmkey/llmkey/state"
)

// keyNames are the keys the daemon serves.
func keyNames(d *Daemon) []string {
	var out []string
	for _, k := range d.snap.Load().Config.Keys {
		out = append(out, k.Name)
	}
	return out
}

// waitForKey waits until the daemon serves the key name.
func waitForKey(t *testing.T, d *Daemon, name string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(keyNames(d), name); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never served %s: it serves %v", name, keyNames(d))
		}
	}
}

// The keyfile's directory and its parent removed, then put back with a
// new keyfile: the new keys serve, heard from the kernel while the
// directories were gone (a parent that is there is watched for them), not
// found by polling, which this test turns off.
func TestKeyfileDirsComeBackWithoutPolling(t *testing.T) {
	defer func(p time.Duration) { pollInterval = p }(pollInterval)
	pollInterval = time.Hour

	d := testDaemon(t, "")
	root := t.TempDir()
	d.opts.Paths.Keyfile = filepath.Join(root, "a", "b", "keys.toml")
	write := func(name string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(d.opts.Paths.Keyfile), 0o700); err != nil {
			t.Fatal(err)
		}
		text := "[[key]]\nprovider = \"openai\"\nname = \"" + name + "\"\nsecret = \"" + testSecret + "\"\n"
		if err := state.WriteAtomic(d.opts.Paths.Keyfile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.watchKeyfile(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// An edit shows the watches are in place (written again, in case the
	// first came before them).
	for deadline := time.Now().Add(5 * time.Second); !slices.Contains(keyNames(d), "first"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the daemon never heard of an edit")
		}
		if time.Since(deadline.Add(-5*time.Second))%(500*time.Millisecond) < 10*time.Millisecond {
			write("first")
		}
	}

	for i, gone := range []string{filepath.Join(root, "a", "b"), filepath.Join(root, "a"), filepath.Join(root, "a")} {
		if err := os.RemoveAll(gone); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the watcher hears of it first
		name := []string{"second", "third", "fourth"}[i]
		write(name)
		waitForKey(t, d, name)
	}
}

// madeUnder tells a directory made below a watched one on the way to the
// one wanted, which that watch could not have seen.
func TestMadeUnder(t *testing.T) {
	root := t.TempDir()
	target := filepath.Join(root, "a", "b")
	if madeUnder(root, target) {
		t.Error("nothing made yet, yet madeUnder says so")
	}
	if err := os.Mkdir(filepath.Join(root, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if !madeUnder(root, target) {
		t.Error("a was made under root, yet madeUnder does not say so")
	}
	if madeUnder(filepath.Join(root, "a"), target) {
		t.Error("b is not there, yet madeUnder says so")
	}
	if madeUnder(target, target) {
		t.Error("a directory is not made under itself")
	}
}
