// SPDX-License-Identifier: MIT

package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
)

// A process that has exited but is not reaped yet (a zombie) still holds
// its token: exec from a thread other than the first leaves that one a
// zombie under the same pid for a moment, while the command takes over.
// Reaped, the process is gone and so is the token.
func TestTokenOfAZombieEndsWhenReaped(t *testing.T) {
	d := tokenDaemon(t)
	cmd := exec.Command("sh", "-c", "read line")
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	tok, err := d.issue(control.TokenRequest{Keys: []string{"openai/a"}, EndWithCaller: true}, cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	stdin.Close() // it exits; nobody reaps it yet
	for deadline := time.Now().Add(10 * time.Second); procState(t, cmd.Process.Pid) != "Z"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the process did not exit")
		}
	}
	if _, ok := d.tokens.lookup(tok.Token); !ok {
		t.Error("the token of a process not reaped yet is refused")
	}
	cmd.Wait()
	if _, ok := d.tokens.lookup(tok.Token); ok {
		t.Error("the token of a reaped process still serves")
	}
}

// procState is the state letter of /proc/PID/stat.
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))[0]
}
