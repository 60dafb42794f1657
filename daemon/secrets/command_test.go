// SPDX-License-Identifier: MIT

package secrets

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmkey/llmkey/state"
)

func cmdKey(script string) state.Key {
	return state.Key{Provider: "openai", Name: "cmd", SecretCmd: []string{"sh", "-c", script}}
}

// readWithin reads k's secret, failing the test should the read hang on
// well past the longest it may take.
func readWithin(t *testing.T, ctx context.Context, k state.Key, known ...string) (string, error) {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Read(ctx, k, known...)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-time.After(CommandTimeout + 20*time.Second):
		t.Fatal("the read of a secret_cmd did not end")
		return "", nil
	}
}

// pidIn is the pid a command wrote to file.
func pidIn(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// pidFile is a file for a command to write a pid to; should the command
// under test leave that process running (a sleep 600, a yes), the
// test's end kills it.
func pidFile(t *testing.T) string {
	file := filepath.Join(t.TempDir(), "pid")
	t.Cleanup(func() {
		b, _ := os.ReadFile(file)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return
		}
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if c := string(cmdline); c == "sleep\x00600\x00" || c == "yes\x00sk-again\x00" {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return file
}

// gone waits until pid is dead (a zombie waiting for init counts).
func gone(pid int) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if _, rest, ok := strings.Cut(string(b), ") "); ok && strings.HasPrefix(rest, "Z") {
			return true
		}
	}
	return false
}

// The secret is the first line of the command's output.
func TestCommandSecretIsItsFirstLine(t *testing.T) {
	s, err := readWithin(t, context.Background(), cmdKey(`printf '  sk-first  \nuser: me\n'`))
	if err != nil || s != "sk-first" {
		t.Fatalf("got %q, %v", s, err)
	}
}

// A command that prints without end is stopped once it printed more than
// a secret could be, and says so.
func TestCommandPrintingTooMuchIsStopped(t *testing.T) {
	pids := pidFile(t)
	_, err := readWithin(t, context.Background(), cmdKey("echo $$ > "+pids+"; exec yes sk-again"))
	if err == nil || !strings.Contains(err.Error(), "output too large") {
		t.Fatalf("a command printing without end: %v", err)
	}
	if pid := pidIn(t, pids); !gone(pid) {
		t.Errorf("the command (pid %d) still runs", pid)
	}
}

// A command that exits but leaves a child holding its output open is
// read without waiting for the child, which is killed.
func TestCommandLeavingAChildHoldingItsOutput(t *testing.T) {
	pids := pidFile(t)
	s, err := readWithin(t, context.Background(), cmdKey("sleep 600 & echo $! > "+pids+"; echo sk-held"))
	if err != nil || s != "sk-held" {
		t.Fatalf("got %q, %v", s, err)
	}
	if pid := pidIn(t, pids); !gone(pid) {
		t.Errorf("the child holding the output (pid %d) still runs", pid)
	}
}

// A command that outlives its time is killed with everything it started.
func TestCommandTimeoutKillsItsProcessGroup(t *testing.T) {
	pids := pidFile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := readWithin(t, ctx, cmdKey("sleep 600 & echo $! > "+pids+"; sleep 600; echo sk-late"))
	if err == nil {
		t.Fatal("a command past its time gave a secret")
	}
	if pid := pidIn(t, pids); !gone(pid) {
		t.Errorf("the command's child (pid %d) still runs", pid)
	}
}

// A failing command's standard error is shown as a short excerpt of its
// first line, with no secret in it: not one the daemon knows, not one
// that looks like a secret, and nothing of its output.
func TestFailingCommandShowsNoSecret(t *testing.T) {
	known := "hunter2hunter2"
	looks := "sk-proj-3f9a0c7e5b2d4a61b8c9d0e1f2a3b4c5"
	script := "echo sk-out-7c1e9b2a4d6f8e0a; echo 'could not read op://Private/OpenAI: token " + looks + " expired (" + known + ")' >&2; echo second line >&2; exit 3"
	_, err := readWithin(t, context.Background(), cmdKey(script), known)
	if err == nil {
		t.Fatal("a failing command gave a secret")
	}
	msg := err.Error()
	for _, s := range []string{known, looks, "sk-out", "second line"} {
		if strings.Contains(msg, s) {
			t.Errorf("the error shows %q: %s", s, msg)
		}
	}
	if !strings.Contains(msg, "secret_cmd sh failed (exit status 3)") || !strings.Contains(msg, "could not read op://Private/OpenAI: token [masked] expired ([masked])") {
		t.Errorf("the error does not say what failed: %s", msg)
	}

	_, err = readWithin(t, context.Background(), cmdKey("exit 1"))
	if err == nil || !strings.Contains(err.Error(), "run it yourself to see why") {
		t.Errorf("a command failing in silence: %v", err)
	}
}

func TestExcerpt(t *testing.T) {
	for _, c := range []struct{ stderr, want string }{
		{"\n\n  Error: openai/work is not in the password store.\n", "Error: openai/work is not in the password store."},
		{"gpg: decryption failed: No secret key\n", "gpg: decryption failed: No secret key"},
		{"key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW rejected", "key [masked] rejected"},
		{"bad \x1b[31mred\x1b[0m", "bad  [31mred [0m"},
		{"session 2024-01-01T12:00:00Z expired", "session 2024-01-01T12:00:00Z expired"},
		{"token abcdefghijklmnopqrstuvwxyzABCD", "token [masked]"},
		{strings.Repeat("word ", 40), strings.TrimSpace(strings.Repeat("word ", 24)) + "…"},
	} {
		if got := excerpt([]byte(c.stderr), nil); got != c.want {
			t.Errorf("excerpt(%q) = %q, want %q", c.stderr, got, c.want)
		}
	}
}
