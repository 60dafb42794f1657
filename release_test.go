// SPDX-License-Identifier: MIT

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// release is the release .goreleaser.yaml builds, as a snapshot that
// publishes nothing, in dist/: what GoReleaser's metadata.json and
// artifacts.json say of it.
type release struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	artifacts []artifact
}

type artifact struct {
	Name   string         `json:"name"`
	Path   string         `json:"path"` // from the repository's root
	Type   string         `json:"type"`
	Goos   string         `json:"goos"`
	Goarch string         `json:"goarch"`
	Extra  map[string]any `json:"extra"`
}

// of are the artifacts of type typ (and, when given, of goos and goarch).
func (r *release) of(typ, goos, goarch string) []artifact {
	var out []artifact
	for _, a := range r.artifacts {
		if a.Type == typ && (goos == "" || a.Goos == goos) && (goarch == "" || a.Goarch == goarch) {
			out = append(out, a)
		}
	}
	return out
}

// snapshotEnv lets GoReleaser read the commit in a checkout with no
// remote (a worktree, a clone made without one): it asks git for the
// remote's URL and, when that fails, drops the commit along with it.
var snapshotEnv = []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=remote.origin.url", "GIT_CONFIG_VALUE_0=https://github.com/llmkey/llmkey.git"}

var snapshotOnce = sync.OnceValues(buildSnapshot)

// releaseSnapshot is dist/ as .ci/run built it before the tests, when it
// is of this commit; otherwise the test builds it now, as .ci/run does
// (minutes on a cold build cache).
func releaseSnapshot(t testing.TB) *release {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed (apt-get install git): the release names its commit")
	}
	r, err := snapshotOnce()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func buildSnapshot() (*release, error) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return nil, fmt.Errorf("the release is built from a git checkout: git rev-parse HEAD: %v", err)
	}
	if r, err := readDist(); err == nil && r.Commit == strings.TrimSpace(string(head)) {
		return r, nil
	}
	cmd := exec.Command("go", "tool", "-modfile=tools/goreleaser.mod", "goreleaser", "release", "--snapshot", "--clean")
	cmd.Env = append(os.Environ(), snapshotEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("goreleaser release --snapshot: %v\n%s", err, out)
	}
	return readDist()
}

func readDist() (*release, error) {
	var r release
	b, err := os.ReadFile(filepath.Join("dist", "metadata.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if b, err = os.ReadFile(filepath.Join("dist", "artifacts.json")); err != nil {
		return nil, err
	}
	return &r, json.Unmarshal(b, &r.artifacts)
}

// archiveFiles are the files of a release archive, by their path under
// the directory the archive wraps them in, with their modes.
func archiveFiles(t testing.TB, a artifact) (files map[string][]byte, modes map[string]os.FileMode) {
	t.Helper()
	f, err := os.Open(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", a.Name, err)
	}
	files, modes = map[string][]byte{}, map[string]os.FileMode{}
	tr := tar.NewReader(gz)
	wrap := strings.TrimSuffix(a.Name, ".tar.gz") + "/"
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, modes
		}
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		name, ok := strings.CutPrefix(path.Clean(h.Name), wrap)
		if !ok {
			t.Errorf("%s: %s is not in the directory %s", a.Name, h.Name, wrap)
			continue
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[name], modes[name] = b, h.FileInfo().Mode()
	}
}

// archiveBinary is llmkey as the release archive for this machine holds
// it, taken out into a directory of the test's.
func archiveBinary(t testing.TB, r *release) string {
	t.Helper()
	archives := r.of("Archive", runtime.GOOS, runtime.GOARCH)
	if len(archives) != 1 {
		t.Fatalf("%d release archives for %s/%s", len(archives), runtime.GOOS, runtime.GOARCH)
	}
	files, _ := archiveFiles(t, archives[0])
	bin := filepath.Join(t.TempDir(), "llmkey")
	writeFile(t, bin, string(files["llmkey"]), 0o755)
	return bin
}

// sha256Of is the hex SHA-256 of the file at p.
func sha256Of(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func gunzip(t testing.TB, b []byte) string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// The snapshot release: an archive for each of linux and darwin on amd64
// and arm64, each with the binary, the README, the licence, the man page
// and the three completions, as this llmkey writes them; a .deb and an
// .rpm for each Linux architecture; SHA-256 checksums that hold; and a
// Homebrew formula that installs each macOS and Linux archive by its
// checksum. The binary for this machine is static, and names the
// snapshot's version and commit.
func TestReleaseSnapshot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the release is built and checked on Linux (.ci/run)")
	}
	r := releaseSnapshot(t)
	sums := releaseChecksums(t, r)
	want := archiveWant(t)
	formula := r.of("Homebrew Formula", "", "")
	if len(formula) != 1 {
		t.Fatalf("%d Homebrew formulas", len(formula))
	}
	rb := readFile(t, formula[0].Path)
	for _, goos := range []string{"linux", "darwin"} {
		for _, goarch := range []string{"amd64", "arm64"} {
			archives := r.of("Archive", goos, goarch)
			if len(archives) != 1 {
				t.Errorf("%d archives for %s/%s", len(archives), goos, goarch)
				continue
			}
			a := archives[0]
			checkArchive(t, a, want)
			if sums[a.Name] == "" || sums[a.Name] != sha256Of(t, a.Path) {
				t.Errorf("checksums.txt says %q for %s, which is %s", sums[a.Name], a.Name, sha256Of(t, a.Path))
			}
			if !strings.Contains(rb, "/"+a.Name+"\"\n") || !strings.Contains(rb, "sha256 \""+sums[a.Name]+"\"") {
				t.Errorf("the formula does not install %s by its checksum:\n%s", a.Name, rb)
			}
		}
	}
	for _, line := range []string{`bin.install "llmkey"`, `man1.install "manpages/llmkey.1.gz"`, `bash_completion.install "completions/llmkey.bash" => "llmkey"`,
		`zsh_completion.install "completions/_llmkey"`, `fish_completion.install "completions/llmkey.fish"`} {
		if !strings.Contains(rb, line) {
			t.Errorf("the formula does not say %s", line)
		}
	}
	for _, goarch := range []string{"amd64", "arm64"} {
		var formats []string
		for _, p := range r.of("Linux Package", "linux", goarch) {
			formats = append(formats, fmt.Sprint(p.Extra["Format"]))
			if sums[p.Name] != sha256Of(t, p.Path) {
				t.Errorf("checksums.txt says %q for %s", sums[p.Name], p.Name)
			}
		}
		if slices.Sort(formats); !slices.Equal(formats, []string{"deb", "rpm"}) {
			t.Errorf("linux/%s packages: %v", goarch, formats)
		}
	}
	checkArchiveBinary(t, r)
}

// releaseChecksums are the SHA-256 sums of checksums.txt, by file name.
func releaseChecksums(t *testing.T, r *release) map[string]string {
	checksums := r.of("Checksum", "", "")
	if len(checksums) != 1 {
		t.Fatalf("%d checksum files", len(checksums))
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, checksums[0].Path)), "\n") {
		sum, name, _ := strings.Cut(line, "  ")
		sums[name] = sum
	}
	return sums
}

// archiveWant is what each archive holds: the README and the licence, the
// man page and completions as this llmkey writes them, and the binary.
func archiveWant(t *testing.T) map[string]string {
	want := map[string]string{
		"llmkey": "", "README.md": readFile(t, "README.md"), "LICENSE": readFile(t, "LICENSE"),
		"manpages/llmkey.1.gz": mustSucceed(t, newUser(t).llmkey("man")).stdout,
	}
	for sh, name := range map[string]string{"bash": "llmkey.bash", "zsh": "_llmkey", "fish": "llmkey.fish"} {
		want["completions/"+name] = mustSucceed(t, newUser(t).llmkey("completion", sh)).stdout
	}
	return want
}

// checkArchiveBinary: the archive's binary for this machine is static, as
// file says, and names the snapshot's version and commit.
func checkArchiveBinary(t *testing.T, r *release) {
	bin := archiveBinary(t, r)
	if _, err := exec.LookPath("file"); err != nil {
		t.Fatal("file is needed (apt-get install file; .ci/run installs it)")
	}
	if out, err := exec.Command("file", bin).Output(); err != nil || !strings.Contains(string(out), "statically linked") {
		t.Errorf("file says of the archive's binary: %v %s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "llmkey "+r.Version+" (commit "+r.Commit[:12]+", ") {
		t.Errorf("the archive's llmkey version: %v %q, want version %s, commit %s", err, out, r.Version, r.Commit)
	}
}

// checkArchive checks that a holds exactly the files of want, each with
// its content (gunzipped for a .gz) when want has one, and llmkey
// executable.
func checkArchive(t *testing.T, a artifact, want map[string]string) {
	t.Helper()
	files, modes := archiveFiles(t, a)
	var names, wantNames []string
	for n := range files {
		names = append(names, n)
	}
	for n := range want {
		wantNames = append(wantNames, n)
	}
	slices.Sort(names)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("%s holds %v, want %v", a.Name, names, wantNames)
	}
	for n, content := range want {
		got := string(files[n])
		if strings.HasSuffix(n, ".gz") && files[n] != nil {
			got = gunzip(t, files[n])
		}
		if content != "" && got != content {
			t.Errorf("%s: %s is not what this llmkey writes", a.Name, n)
		}
	}
	if modes["llmkey"]&0o111 == 0 {
		t.Errorf("%s: llmkey is not executable (%v)", a.Name, modes["llmkey"])
	}
}
