// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"os"
	"strings"
	"testing"
)

// With no daemon, logs prints the end of daemon.log in the state dir,
// and says how to get one when there is none yet.
func TestLogsCommandWithoutTheDaemon(t *testing.T) {
	_, p := tempUser(t)
	s, out, _ := captured(t)
	err := LogsCommand(context.Background(), LogsCommandInput{Paths: p, Lines: 2}, s)
	if err == nil || !strings.Contains(err.Error(), "no daemon log at "+p.LogPath()) || !strings.Contains(err.(hinter).HintText(), "llmkey start") {
		t.Errorf("no log: %v", err)
	}
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.LogPath(), []byte("one\ntwo\nthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for lines, want := range map[int]string{2: "two\nthree\n", 0: "one\ntwo\nthree\n", 9: "one\ntwo\nthree\n"} {
		s, out, _ = captured(t)
		if err := LogsCommand(context.Background(), LogsCommandInput{Paths: p, Lines: lines}, s); err != nil || out.String() != want {
			t.Errorf("-n %d: %q %v, want %q", lines, out, err, want)
		}
	}
}
