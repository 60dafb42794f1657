// SPDX-License-Identifier: MIT

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// man --install writes the page where man looks for a user's own, and
// says what man does with it, as man -w answers: found, when ~/.local/bin
// is on PATH (man looks in ../share/man beside each directory of PATH);
// otherwise the MANPATH line to add, which then makes man find it.
func TestManInstall(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		t.Fatal("man is needed (apt-get install man-db; .ci/run installs it)")
	}
	u := newUser(t)
	page := filepath.Join(u.home, ".local", "share", "man", "man1", "llmkey.1")
	manW := func(env ...string) string {
		cmd := exec.Command("man", "-w", "llmkey")
		cmd.Env = append(append([]string{}, u.env...), env...)
		out, _ := cmd.Output()
		return strings.TrimSpace(string(out))
	}
	if found := manW(); found != "" {
		t.Skipf("man finds a page of llmkey's already (%s): remove that package first", found)
	}

	r := mustSucceed(t, u.llmkey("man", "--install"))
	if !strings.HasPrefix(r.stderr, "wrote "+page+"\n") || !strings.Contains(r.stderr, "man does not look in") {
		t.Fatalf("man --install, ~/.local/bin not on PATH: %v", r)
	}
	if readFile(t, page) != mustSucceed(t, u.llmkey("man")).stdout {
		t.Fatal("the page installed is not llmkey man's")
	}
	_, line, _ := strings.Cut(r.stderr, "\n  export ")
	line, _, _ = strings.Cut(line, "\n")
	if !strings.HasPrefix(line, "MANPATH=") {
		t.Fatalf("man --install does not say how to set MANPATH: %v", r)
	}
	sh := exec.Command("sh", "-c", "export "+line+" && man -w llmkey")
	sh.Env = u.env
	if out, err := sh.Output(); err != nil || strings.TrimSpace(string(out)) != page {
		t.Errorf("with the line man --install gave (export %s), man -w llmkey: %v %q", line, err, out)
	}
	// The MANPATH line keeps man's own directories.
	sh = exec.Command("sh", "-c", "export "+line+" && man -w ls")
	sh.Env = u.env
	if out, err := sh.Output(); err != nil || !strings.HasPrefix(string(out), "/usr/share/man/") {
		t.Errorf("with the line man --install gave (export %s), man -w ls: %v %q", line, err, out)
	}

	onPath := "PATH=" + filepath.Join(u.home, ".local", "bin") + ":" + os.Getenv("PATH")
	r = mustSucceed(t, u.run(nil, []string{onPath}, "man", "--install"))
	if r.stderr != "wrote "+page+"\nman llmkey reads it\n" {
		t.Errorf("man --install, ~/.local/bin on PATH: %v", r)
	}
	if found := manW(onPath); found != page {
		t.Errorf("man -w llmkey with ~/.local/bin on PATH: %q", found)
	}
}
