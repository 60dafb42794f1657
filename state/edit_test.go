// SPDX-License-Identifier: MIT

package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// handWritten is a keyfile as a person writes it: comments, odd spacing,
// quoting styles, a multi-line string that contains a header-like line,
// and tables after the keys.
const handWritten = `# my llmkey keys   
#   (edited by hand)

[daemon]
listen="127.0.0.1:0"     # any port

# work key, billed to ACME
[[key]]
  provider = 'openai'
    name="work"
secret = "sk-work-aaaaaaaaaaaaaaaaaaaa"
models = [
  "gpt-4o*",   # the big one
  "o3",
]


[[key]]   # personal
provider = "anthropic"
name     = "personal"
secret   = """
sk-ant-pppppppppppppppppppp"""
# rpm = 60


[provider.local]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
`

const newBlock = "[[key]]\nprovider = \"openai\"\nname = \"new\"\nsecret = \"sk-new-nnnnnnnnnnnnnnnnnnnn\"\nrpm = 5\n"

var newKey = Key{Provider: "openai", Name: "new", Secret: "sk-new-nnnnnnnnnnnnnnnnnnnn", RPM: 5}

func TestInsertKey(t *testing.T) {
	tests := []struct {
		name, in, want string
		line           int
	}{
		{"empty file", "", newBlock, 1},
		{"after last key, before other tables", handWritten,
			strings.Replace(handWritten, "# rpm = 60\n", "# rpm = 60\n\n"+newBlock, 1), 25},
		{"no keys yet", "[daemon]\nlisten = \"127.0.0.1:0\"\n", "[daemon]\nlisten = \"127.0.0.1:0\"\n\n" + newBlock, 4},
		{"no trailing newline", "# x", "# x\n\n" + newBlock, 3},
		{"comments only", "# keys\n\n", "# keys\n\n\n" + newBlock, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, line, err := insertKey("k.toml", []byte(tt.in), newKey)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if line != tt.line {
				t.Errorf("line = %d, want %d", line, tt.line)
			}
		})
	}
}

func TestInsertKeyRefuses(t *testing.T) {
	if _, _, err := insertKey("k.toml", []byte(handWritten), Key{Provider: "openai", Name: "work", Secret: "s"}); !errors.As(err, new(*DuplicateError)) {
		t.Errorf("duplicate: got %v", err)
	}
	if _, _, err := insertKey("k.toml", []byte(handWritten), Key{Provider: "nope", Name: "x", Secret: "s"}); err == nil || !strings.Contains(err.Error(), "unknown provider") {
		t.Errorf("unknown provider: got %v", err)
	}
	bad := handWritten + "\n[[key]]\nprovider = \"opneai\"\nname = \"b\"\nsecret = \"s\"\n"
	if _, _, err := insertKey("k.toml", []byte(bad), newKey); err == nil || !strings.Contains(err.Error(), "problem to fix first") {
		t.Errorf("invalid file: got %v", err)
	}
	inline := "key = [{provider = \"openai\", name = \"a\", secret = \"s\"}]\n"
	if _, _, err := insertKey("k.toml", []byte(inline), newKey); err == nil || !strings.Contains(err.Error(), "inline") {
		t.Errorf("inline keys: got %v", err)
	}
}

func TestRemoveKey(t *testing.T) {
	tests := []struct {
		name, in, ref, want string
	}{
		{"middle block with attached comment", handWritten, "openai/work",
			strings.Replace(handWritten, `

# work key, billed to ACME
[[key]]
  provider = 'openai'
    name="work"
secret = "sk-work-aaaaaaaaaaaaaaaaaaaa"
models = [
  "gpt-4o*",   # the big one
  "o3",
]
`, "\n", 1)},
		{"last key block keeps trailing comment lines of its own", handWritten, "anthropic/personal",
			strings.Replace(handWritten, `

[[key]]   # personal
provider = "anthropic"
name     = "personal"
secret   = """
sk-ant-pppppppppppppppppppp"""
# rpm = 60
`, "\n", 1)},
		{"first in file", "[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"s\"\n\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \"s\"\n", "openai/a",
			"[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \"s\"\n"},
		{"only key", "[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"s\"\n", "openai/a", ""},
		{"jammed blocks", "[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"s\"\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \"s\"\n[daemon]\n", "openai/b",
			"[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"s\"\n[daemon]\n"},
		{"invalid elsewhere", "[[key]]\nprovider = \"opneai\"\nname = \"a\"\nsecret = \"s\"\n", "opneai/a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, n, _ := strings.Cut(tt.ref, "/")
			got, k, err := removeKey("k.toml", []byte(tt.in), p, n, nil)
			if err != nil {
				t.Fatal(err)
			}
			if k.Ref() != tt.ref {
				t.Errorf("removed %s, want %s", k.Ref(), tt.ref)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestRemoveKeyRefuses(t *testing.T) {
	if _, _, err := removeKey("k.toml", []byte(handWritten), "openai", "nope", nil); !errors.As(err, new(*NotFoundError)) {
		t.Errorf("unknown key: got %v", err)
	}
	dup := okKey + "\n" + okKey
	if _, _, err := removeKey("k.toml", []byte(dup), "openai", "a", nil); err == nil || !strings.Contains(err.Error(), "defined 2 times") {
		t.Errorf("duplicate: got %v", err)
	}
	stop := errors.New("declined")
	if _, _, err := removeKey("k.toml", []byte(handWritten), "openai", "work", func(Key) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("confirm error not returned: %v", err)
	}
}

// TestAddThenRemoveAnother holds edits to the byte:
// add a key, remove a different hand-written one; every other byte stays.
func TestAddThenRemoveAnother(t *testing.T) {
	added, _, err := insertKey("k.toml", []byte(handWritten), newKey)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := removeKey("k.toml", added, "openai", "work", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := removeKey("k.toml", []byte(handWritten), "openai", "work", nil)
	want = []byte(strings.Replace(string(want), "# rpm = 60\n", "# rpm = 60\n\n"+newBlock, 1))
	if string(got) != string(want) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	back, _, err := removeKey("k.toml", got, "openai", "new", nil)
	if err != nil {
		t.Fatal(err)
	}
	if w, _, _ := removeKey("k.toml", []byte(handWritten), "openai", "work", nil); string(back) != string(w) {
		t.Fatalf("removing the added key did not restore the file:\n%q\n%q", back, w)
	}
}

// FuzzAddRemoveRoundTrip: on any valid keyfile, rm undoes add byte for
// byte (a file without a final newline gains one when the key went at the
// end).
func FuzzAddRemoveRoundTrip(f *testing.F) {
	for _, s := range []string{"", handWritten, okKey, "# x", "[daemon]\nlisten = \"localhost:1\"\n",
		"a = 1\r\n", okKey + "\n\n\n# trailing\n", "[[key]]\nprovider = \"openai\"\nname = \"m\"\nsecret = '''\n[[key]]\nx'''\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := Parse("k.toml", []byte(s)); err != nil {
			return
		}
		added, _, err := insertKey("k.toml", []byte(s), newKey)
		if err != nil {
			if strings.Contains(err.Error(), "inline") {
				return
			}
			t.Fatalf("insert into valid file: %v", err)
		}
		back, _, err := removeKey("k.toml", added, "openai", "new", nil)
		if err != nil {
			t.Fatalf("remove: %v", err)
		}
		if string(back) != s && (strings.HasSuffix(s, "\n") || string(back) != s+"\n") {
			t.Fatalf("round trip changed the file:\n%q\n%q", s, back)
		}
	})
}

func TestAddKeyFileModesAndConcurrency(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf", "llmkey")
	path := filepath.Join(dir, "keys.toml")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := AddKey(path, Key{Provider: "openai", Name: fmt.Sprintf("k%d", i), Secret: "sk-s"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Keys) != 20 {
		t.Fatalf("%d keys after 20 concurrent adds, want 20", len(cfg.Keys))
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), want, err)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestEditThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "keys.toml")
	os.MkdirAll(filepath.Dir(real), 0o700)
	if err := os.WriteFile(real, []byte(okKey), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "keys.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := AddKey(link, newKey); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(real)
	if !strings.Contains(string(data), `name = "new"`) {
		t.Fatalf("the linked file was not edited:\n%s", data)
	}
}

// set changes only the lines of the fields that changed: a limit
// rewritten where it is, a new one at the end of its block, one set to 0
// removed; comments, other keys and other fields keep every byte.
func TestSetKeyInPlace(t *testing.T) {
	src := "# my keys\n[[key]]\nprovider = \"openai\"   # work\nname = \"a\"\nsecret = \"sk-aaaaaaaaaaaaaaaaaaaaaaaa\"\nrpm = 60 # careful\nmodels = [\n  \"gpt-4o\",\n]\n\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \"sk-bbbbbbbbbbbbbbbbbbbbbbbb\"\n"
	path := filepath.Join(t.TempDir(), "keys.toml")
	os.WriteFile(path, []byte(src), 0o600)
	_, after, err := SetKey(path, "openai", "a", func(k *Key) error {
		k.RPM, k.TPM, k.Models, k.Tags = 120, 1000, nil, []string{"work"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# my keys\n[[key]]\nprovider = \"openai\"   # work\nname = \"a\"\nsecret = \"sk-aaaaaaaaaaaaaaaaaaaaaaaa\"\nrpm = 120\ntpm = 1000\ntags = [\"work\"]\n\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \"sk-bbbbbbbbbbbbbbbbbbbbbbbb\"\n"
	if string(got) != want {
		t.Errorf("after set:\n%s\nwant:\n%s", got, want)
	}
	if after.RPM != 120 || after.TPM != 1000 {
		t.Errorf("after: %+v", after)
	}
	// Changing nothing changes no byte; the other key's limit goes at
	// the end of its block, at the end of the file.
	SetKey(path, "openai", "a", func(*Key) error { return nil })
	if again, _ := os.ReadFile(path); string(again) != want {
		t.Errorf("a set that changes nothing changed:\n%s", again)
	}
	SetKey(path, "openai", "b", func(k *Key) error { k.RPD = 5; return nil })
	if b, _ := os.ReadFile(path); string(b) != want+"rpd = 5\n" {
		t.Errorf("a new field on the last key:\n%s", b)
	}
	if _, _, err := SetKey(path, "openai", "c", func(*Key) error { return nil }); err == nil {
		t.Error("set of a key that is not there")
	}
}

// A rename changes only the key's name: its name line (keeping the
// comment on it), every other byte of the file as it was; a name another
// key has, or one that is no name, is refused with nothing written.
func TestRenameKeyInPlace(t *testing.T) {
	src := "# my keys\n[[key]]\nprovider = \"openai\"\nname  =  'a'   # the work account\nsecret = \"sk-aaaaaaaaaaaaaaaaaaaaaaaa\"\nrpm = 60 # careful\n\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \"sk-bbbbbbbbbbbbbbbbbbbbbbbb\"\n"
	path := filepath.Join(t.TempDir(), "keys.toml")
	os.WriteFile(path, []byte(src), 0o600)
	after, err := RenameKey(path, "openai", "a", "work")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(src, "name  =  'a'   # the work account", "name = \"work\"   # the work account", 1)
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("after rename:\n%s\nwant:\n%s", got, want)
	}
	if after.Name != "work" || after.RPM != 60 || after.Secret != "sk-aaaaaaaaaaaaaaaaaaaaaaaa" {
		t.Errorf("the key renamed: %+v", after)
	}
	for _, tt := range []struct{ from, to, says string }{
		{"work", "b", "already exists"},
		{"work", "no/name", "name"},
		{"nosuch", "c", "nosuch"},
	} {
		if _, err := RenameKey(path, "openai", tt.from, tt.to); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("rename %s to %s: %v", tt.from, tt.to, err)
		}
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("a refused rename of %s to %s wrote:\n%s", tt.from, tt.to, got)
		}
	}
}
