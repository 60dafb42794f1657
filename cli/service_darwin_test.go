// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// On macOS, the agent compiled by Apple's own plutil: it passes the lint,
// turns into the binary form launchd keeps and back into XML, and every
// field comes through. A plist that is not one (an unescaped "&") fails
// the lint, so the test can tell a bad agent. This file builds only for
// darwin: CI vets it everywhere and runs it on a macOS runner.
func TestLaunchdPlistCompilesWithPlutil(t *testing.T) {
	plutil, err := exec.LookPath("plutil")
	if err != nil {
		t.Fatalf("plutil, which every macOS has in /usr/bin, is not on PATH: %v", err)
	}
	dir := t.TempDir()
	lint := func(content string) (string, error) {
		src := filepath.Join(dir, launchdLabel+".plist")
		if err := os.WriteFile(src, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(plutil, "-lint", src).CombinedOutput()
		return string(out), err
	}

	p, files := launchdAgent(t)
	if out, err := lint(files[0].Content); err != nil {
		t.Fatalf("plutil -lint: %v\n%s\n%s", err, out, files[0].Content)
	}
	src, bin := filepath.Join(dir, launchdLabel+".plist"), filepath.Join(dir, "agent.bplist")
	if out, err := exec.Command(plutil, "-convert", "binary1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("plutil -convert binary1: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("bplist00")) {
		t.Fatalf("not a binary plist: %q", b[:min(len(b), 16)])
	}
	back, err := exec.Command(plutil, "-convert", "xml1", "-o", "-", bin).Output()
	if err != nil {
		t.Fatalf("plutil -convert xml1: %v", err)
	}
	checkLaunchdFields(t, parsePlist(t, string(back)), p)

	// With the line listing the directories install made.
	made := withMade(files[0].Content, []string{"/Users/a b/Library/LaunchAgents", "/Users/x--y-"})
	if out, err := lint(made); err != nil {
		t.Errorf("plutil -lint with the directories made: %v\n%s\n%s", err, out, made)
	}

	broken := strings.Replace(files[0].Content, "keys &amp; more", "keys & more", 1)
	if broken == files[0].Content {
		t.Fatal("the agent has no escaped & to break")
	}
	if out, err := lint(broken); err == nil {
		t.Errorf("plutil passed a plist with an unescaped &: this test cannot tell a bad plist\n%s", out)
	}
}
