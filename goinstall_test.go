// SPDX-License-Identifier: MIT

package main

import (
	"archive/zip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// go install github.com/llmkey/llmkey@vX, as a user runs it, from a
// module proxy (here one in a directory, holding this tree as v0.9.9,
// with the module cache's downloads behind it for the dependencies):
// the llmkey it builds names that version.
func TestGoInstallNamesItsModuleVersion(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed (apt-get install git): it lists the module's files")
	}
	const version = "v0.9.9"
	tmp := t.TempDir()
	at := filepath.Join(tmp, "proxy", "github.com", "llmkey", "llmkey", "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(at, "list"), version+"\n", 0o644)
	writeFile(t, filepath.Join(at, version+".info"), `{"Version":"`+version+`","Time":"2026-12-01T00:00:00Z"}`, 0o644)
	writeFile(t, filepath.Join(at, version+".mod"), readFile(t, "go.mod"), 0o644)
	moduleZip(t, filepath.Join(at, version+".zip"), "github.com/llmkey/llmkey@"+version+"/")

	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	// Built as the release is, so that the build cache serves what the
	// release build compiled already.
	cmd := exec.Command("go", "install", "-trimpath", "-tags", "urfave_cli_no_docs", "github.com/llmkey/llmkey@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOPROXY=file://"+filepath.Join(tmp, "proxy")+",file://"+filepath.Join(strings.TrimSpace(string(modcache)), "cache", "download"),
		"GOMODCACHE="+filepath.Join(tmp, "modcache"), "GOFLAGS=-modcacherw", "GOSUMDB=off", "GOBIN="+filepath.Join(tmp, "bin"),
		"CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install github.com/llmkey/llmkey@%s: %v\n%s", version, err, out)
	}
	out, err := exec.Command(filepath.Join(tmp, "bin", "llmkey"), "version", "--json").Output()
	var v struct{ Version, Commit string }
	if err != nil || json.Unmarshal(out, &v) != nil || v.Version != strings.TrimPrefix(version, "v") || v.Commit != "" {
		t.Errorf("llmkey version --json of go install @%s: %v %s", version, err, out)
	}
}

// moduleZip writes the module zip of this tree (its files as git lists
// them, tracked or not, less the ignored), each under prefix.
func moduleZip(t *testing.T, path, prefix string) {
	list, err := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z := zip.NewWriter(f)
	for _, name := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		b, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		w, err := z.Create(prefix + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
}
