// SPDX-License-Identifier: MIT

package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// otherUID is a uid that is neither this process's nor root's; giving a
// file to it needs root (CI runs as root).
func otherUID(t *testing.T) int {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("giving a file to another uid needs root (CI runs as root)")
	}
	return 4242
}

// The state and runtime dirs are refused, and nothing is created, when
// another user could swap them or what they hold: a directory on the way
// that others may write (unless sticky, as /tmp), or that another user
// owns, and a symlink on the way that another user made.
func TestDirsAnotherUserCouldSwapAreRefused(t *testing.T) {
	other := otherUID(t)
	tests := []struct {
		name    string
		prepare func(t *testing.T, root string) string // returns the dir to ensure
		says    string                                 // "" when it is used
	}{
		{"parent writable by others", func(t *testing.T, root string) string {
			mkdir(t, root+"/cache", 0o777)
			return root + "/cache/llmkey/run"
		}, "cache may be written by other users (mode 0777)"},
		{"parent writable by its group", func(t *testing.T, root string) string {
			mkdir(t, root+"/cache", 0o775)
			return root + "/cache/llmkey"
		}, "cache may be written by other users (mode 0775)"},
		{"parent owned by another user", func(t *testing.T, root string) string {
			mkdir(t, root+"/cache", 0o755)
			os.Chown(root+"/cache", other, other)
			return root + "/cache/llmkey/run"
		}, "cache is owned by uid 4242"},
		{"symlink another user made", func(t *testing.T, root string) string {
			mkdir(t, root+"/real", 0o700)
			os.Symlink(root+"/real", root+"/link")
			os.Lchown(root+"/link", other, other)
			return root + "/link/llmkey"
		}, "link is a symbolic link made by uid 4242"},
		{"the dir itself owned by another user", func(t *testing.T, root string) string {
			mkdir(t, root+"/llmkey", 0o700)
			os.Chown(root+"/llmkey", other, other)
			return root + "/llmkey"
		}, "llmkey is owned by uid 4242"},
		{"the dir itself writable by others", func(t *testing.T, root string) string {
			mkdir(t, root+"/llmkey", 0o733)
			return root + "/llmkey"
		}, "llmkey may be"},
		{"sticky parent open to all", func(t *testing.T, root string) string {
			mkdir(t, root+"/tmp", os.ModeSticky|0o777)
			return root + "/tmp/llmkey/run"
		}, ""},
		{"symlink of ours on the way", func(t *testing.T, root string) string {
			mkdir(t, root+"/data/cache", 0o700)
			os.Symlink("data/./x/../cache", root+"/cache")
			return root + "/cache/llmkey/run"
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ensure := range []func(string) error{EnsurePrivateDir, EnsureRuntimeDir} {
				root := t.TempDir()
				dir := tt.prepare(t, root)
				before := tree(t, root)
				err := ensure(dir)
				if tt.says == "" {
					if err != nil {
						t.Fatalf("ensure %s: %v", dir, err)
					}
					if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
						t.Errorf("%s after ensure: %v %v", dir, fi, err)
					}
					continue
				}
				var ue *UnsafeDirError
				var pe *PathError
				if !errors.As(err, &ue) || !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.says) || pe.Hint == "" {
					t.Errorf("ensure %s: %v, want a refusal that says %q, with a hint", dir, err, tt.says)
				}
				if after := tree(t, root); after != before {
					t.Errorf("a refused ensure created something:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			}
		})
	}
}

// The runtime dir itself may not be a symlink, even one of ours, as the
// CLI refuses one; the state dir may.
func TestRuntimeDirItselfMayNotBeASymlink(t *testing.T) {
	root := t.TempDir()
	mkdir(t, root+"/real", 0o700)
	os.Symlink(root+"/real", root+"/run")
	if err := EnsureRuntimeDir(root + "/run"); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("a symlinked runtime dir: %v", err)
	}
	if err := EnsurePrivateDir(root + "/run"); err != nil {
		t.Errorf("a symlinked state dir of ours: %v", err)
	}
}

func mkdir(t *testing.T, dir string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
}

// tree lists what is under root.
func tree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			b.WriteString(p + " " + fi.Mode().String() + "\n")
		}
		return nil
	})
	return b.String()
}
