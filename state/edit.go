// SPDX-License-Identifier: MIT

package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
)

// The keyfile is the user's file. add and rm change exactly one [[key]]
// block and leave every other byte as it was:
//
//   - add inserts one blank line and the new block right after the last
//     [[key]] block (at the end of the file when there is none);
//   - rm removes the block (with the comment lines directly above its
//     header) and one blank line that separated it from what came before
//     (from what follows, for a block at the very top).
//
// So rm undoes add exactly, and a hand-written file keeps its comments,
// order, spacing and quoting. Writes go to a temporary file in the same
// directory which is fsynced and renamed over the keyfile; a lock makes
// two concurrent edits apply one after the other instead of losing one.

// AddKey appends k to the keyfile at path, creating the file (0600) and its
// directory (0700) when missing. It returns the 1-based line of the new
// block's header.
func AddKey(path string, k Key) (int, error) {
	var line int
	err := editKeyfile(path, true, func(data []byte) ([]byte, error) {
		out, l, err := insertKey(path, data, k)
		line = l
		return out, err
	})
	return line, err
}

// insertKey is AddKey on bytes. The result is fully validated, so a key
// the keyfile would refuse (unknown provider, bad name) is refused here.
func insertKey(path string, data []byte, k Key) ([]byte, int, error) {
	cfg, lay, err := decode(path, data)
	if err == nil {
		err = validate(cfg, lay)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("the keyfile has a problem to fix first: %w", err)
	}
	if i := cfg.Find(k.Provider, k.Name); i >= 0 {
		return nil, 0, &DuplicateError{Ref: k.Ref(), Path: path, Line: cfg.KeyLine(i)}
	}
	blocks := lay.keyBlocks()
	if len(blocks) != len(cfg.Keys) {
		return nil, 0, &KeyfileError{Path: path, Msg: "keys are defined inline (key = [...]), not as [[key]] tables",
			Hint: "add the key by hand, or rewrite the keys as [[key]] tables"}
	}
	text := string(data)
	at, prefix := len(text), ""
	if len(blocks) > 0 {
		at = lay.lineEnd(blocks[len(blocks)-1].end)
	}
	if text != "" {
		if at == len(text) && !lay.trailingNewline {
			prefix = "\n"
		}
		prefix += "\n"
	}
	out := []byte(text[:at] + prefix + FormatKey(k) + text[at:])
	if _, err := Parse(path, out); err != nil {
		return nil, 0, fmt.Errorf("refusing to add %s: %w", k.Ref(), err)
	}
	return out, strings.Count(text[:at]+prefix, "\n") + 1, nil
}

// RemoveKey removes the [[key]] block of PROVIDER/NAME and returns the key
// it held. The rest of the file need not be valid beyond its syntax, so
// that removing a bad key is a way to fix a keyfile. confirm, if not nil,
// is called with the key under the lock before anything is written; an
// error from it cancels the removal.
func RemoveKey(path, provider, name string, confirm func(Key) error) (Key, error) {
	var removed Key
	err := editKeyfile(path, false, func(data []byte) ([]byte, error) {
		out, k, err := removeKey(path, data, provider, name, confirm)
		removed = k
		return out, err
	})
	return removed, err
}

// removeKey is RemoveKey on bytes.
func removeKey(path string, data []byte, provider, name string, confirm func(Key) error) ([]byte, Key, error) {
	cfg, lay, err := decode(path, data)
	if err != nil {
		return nil, Key{}, fmt.Errorf("the keyfile has a problem to fix first: %w", err)
	}
	ref := provider + "/" + name
	var idx []int
	for i, k := range cfg.Keys {
		if k.Provider == provider && k.Name == name {
			idx = append(idx, i)
		}
	}
	switch {
	case len(idx) == 0:
		return nil, Key{}, cfg.KeyNotFound(provider, name)
	case len(idx) > 1:
		return nil, Key{}, &KeyfileError{Path: path, Line: cfg.KeyLine(idx[1]), Msg: fmt.Sprintf("%s is defined %d times", ref, len(idx)),
			Hint: "rename or remove the extra blocks by hand, so that a removal cannot take the wrong one"}
	}
	blocks := lay.keyBlocks()
	if len(blocks) != len(cfg.Keys) {
		return nil, Key{}, &KeyfileError{Path: path, Msg: "keys are defined inline (key = [...]), not as [[key]] tables",
			Hint: "remove the key by hand"}
	}
	removed := cfg.Keys[idx[0]]
	if confirm != nil {
		if err := confirm(removed); err != nil {
			return nil, Key{}, err
		}
	}
	b := blocks[idx[0]]
	from, to := lay.offsets[b.start], lay.lineEnd(b.end)
	switch {
	case b.start > 0 && lay.kinds[b.start-1] == lineBlank:
		from = lay.offsets[b.start-1]
	case b.start == 0 && b.end+1 < len(lay.lines) && lay.kinds[b.end+1] == lineBlank:
		to = lay.lineEnd(b.end + 1)
	}
	text := string(data)
	return []byte(text[:from] + text[to:]), removed, nil
}

// FormatKey renders k as a [[key]] block, fields in Key's order, zero
// limits and empty lists left out.
func FormatKey(k Key) string {
	var b strings.Builder
	b.WriteString("[[key]]\n")
	for i := range keyFields {
		if line, ok := fieldLine(k, i); ok {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// fieldLine is the line that sets k's i-th field, and whether it has one
// (zero limits, empty lists and empty optional strings have none).
func fieldLine(k Key, i int) (string, bool) {
	f, fv := keyFields[i], reflect.ValueOf(k).Field(i)
	name := fieldName(f)
	switch f.Type.Kind() {
	case reflect.Bool:
		if fv.Bool() {
			return name + " = true", true
		}
	case reflect.String:
		// provider, name always; secret unless it comes from elsewhere
		if fv.String() != "" || i < 2 || (i == 2 && len(k.SecretCmd) == 0 && !k.Keychain) {
			return fmt.Sprintf("%s = %s", name, tomlString(fv.String())), true
		}
	case reflect.Int:
		if n := fv.Int(); n != 0 {
			return fmt.Sprintf("%s = %d", name, n), true
		}
	case reflect.Float64:
		if x := fv.Float(); x != 0 {
			return fmt.Sprintf("%s = %s", name, strconv.FormatFloat(x, 'f', -1, 64)), true
		}
	case reflect.Slice:
		if fv.Len() > 0 {
			q := make([]string, fv.Len())
			for j := range q {
				q[j] = tomlString(fv.Index(j).String())
			}
			return fmt.Sprintf("%s = [%s]", name, strings.Join(q, ", ")), true
		}
	default:
		panic("FormatKey: a Key field of kind " + f.Type.Kind().String())
	}
	return "", false
}

// SetKey changes the key PROVIDER/NAME in place: change edits a copy of
// it, and only the lines of the fields that changed are rewritten (a
// field set anew goes at the end of the block, one unset is removed);
// every other byte of the file stays. It returns the key before and
// after.
func SetKey(path, provider, name string, change func(k *Key) error) (before, after Key, err error) {
	err = editKeyfile(path, false, func(data []byte) ([]byte, error) {
		var out []byte
		out, before, after, err = editKey(path, data, provider, name, name, change)
		return out, err
	})
	return before, after, err
}

// RenameKey renames the key PROVIDER/NAME to PROVIDER/TO in place: only
// its name line changes. It returns the key as renamed.
func RenameKey(path, provider, name, to string) (Key, error) {
	var after Key
	err := editKeyfile(path, false, func(data []byte) ([]byte, error) {
		out, _, a, err := editKey(path, data, provider, name, to, func(*Key) error { return nil })
		after = a
		return out, err
	})
	return after, err
}

// editKey is SetKey on bytes, the key named to after it (a rename when
// to is not name).
func editKey(path string, data []byte, provider, name, to string, change func(k *Key) error) (out []byte, before, after Key, err error) {
	cfg, lay, err := decode(path, data)
	if err == nil {
		err = validate(cfg, lay)
	}
	if err != nil {
		return nil, before, after, fmt.Errorf("the keyfile has a problem to fix first: %w", err)
	}
	i := cfg.Find(provider, name)
	if i < 0 {
		return nil, before, after, cfg.KeyNotFound(provider, name)
	}
	if j := cfg.Find(provider, to); to != name && j >= 0 {
		return nil, before, after, &DuplicateError{Ref: provider + "/" + to, Path: path, Line: cfg.KeyLine(j)}
	}
	blocks := lay.keyBlocks()
	if len(blocks) != len(cfg.Keys) {
		return nil, before, after, &KeyfileError{Path: path, Msg: "keys are defined inline (key = [...]), not as [[key]] tables", Hint: "edit the key by hand"}
	}
	before, after = cfg.Keys[i], cfg.Keys[i]
	if err := change(&after); err != nil {
		return nil, before, after, err
	}
	after.Provider, after.Name = provider, to
	res := rewriteBlock(lay, blocks[i], before, after)
	cfg2, err := Parse(path, res)
	if err != nil {
		return nil, before, after, fmt.Errorf("refusing to change %s: %w", after.Ref(), err)
	}
	if j := cfg2.Find(provider, to); j < 0 || !reflect.DeepEqual(cfg2.Keys[j], after) {
		return nil, before, after, fmt.Errorf("internal error: the edit of %s did not read back as written; nothing was changed", after.Ref())
	}
	return res, before, after, nil
}

// nameField is the place of Key.Name in keyFields.
const nameField = 1

// rewriteBlock is the file of lay with the block sec of key before
// rewritten as after: only the lines of the fields that changed.
func rewriteBlock(lay *layout, sec *section, before, after Key) []byte {
	replace := map[int]string{} // line -> its new text ("\x00": removed)
	var added []string
	for f := range keyFields {
		oldLine, _ := fieldLine(before, f)
		newLine, has := fieldLine(after, f)
		if oldLine == newLine {
			continue
		}
		at, ok := sec.keys[fieldName(keyFields[f])]
		switch {
		case ok:
			end := at
			for end+1 < len(lay.lines) && lay.kinds[end+1] == lineContinuation {
				end++
				replace[end] = "\x00"
			}
			replace[at] = "\x00"
			if has {
				replace[at] = newLine
			}
			if has && f == nameField {
				// A comment on the name line is about the key, which
				// a rename keeps (one on a number is about its value).
				replace[at] += lay.trailingComment(at)
			}
		case has:
			added = append(added, newLine)
		}
	}
	var out strings.Builder
	for l := range lay.lines {
		text := lay.lines[l]
		if r, ok := replace[l]; ok {
			text = r
		}
		if text != "\x00" {
			out.WriteString(text)
			if l+1 < len(lay.lines) || lay.trailingNewline {
				out.WriteByte('\n')
			}
		}
		if l == sec.end {
			if !lay.trailingNewline && l+1 == len(lay.lines) && len(added) > 0 {
				out.WriteByte('\n')
			}
			for _, a := range added {
				out.WriteString(a + "\n")
			}
		}
	}
	return []byte(out.String())
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// editKeyfile runs change on the keyfile's bytes under an exclusive lock
// and writes the result atomically. The result is validated before it is
// written: an edit never leaves behind a file that does not parse.
func editKeyfile(path string, create bool, change func([]byte) ([]byte, error)) error {
	target, err := resolveLink(path)
	if err != nil {
		return err
	}
	if create {
		if err := EnsurePrivateDir(filepath.Dir(target)); err != nil {
			return err
		}
	}
	f, err := lockKeyfile(target, create)
	if err != nil {
		return err
	}
	defer f.Close() // releases the lock

	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat keyfile: %w", err)
	}
	if err := checkPrivate(path, fi, keyfileFile); err != nil {
		return err
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return fmt.Errorf("read keyfile: %w", err)
	}
	out, err := change(data)
	if err != nil {
		return err
	}
	if _, _, err := decode(path, out); err != nil {
		return fmt.Errorf("internal error: the edited keyfile would not parse, nothing was written: %w", err)
	}
	return WriteAtomic(target, out, fi.Mode().Perm()&0o700|0o600)
}

// resolveLink follows a symlinked keyfile (dotfile managers link them) so
// that the rename replaces the real file, not the link.
func resolveLink(path string) (string, error) {
	t, err := filepath.EvalSymlinks(path)
	if err == nil {
		return t, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return "", &PathError{Path: path, Problem: "is a symlink to a file that does not exist",
				Hint: "create the file it points to, or remove the link", Keyfile: true}
		}
		return path, nil
	}
	return "", fmt.Errorf("resolve keyfile path: %w", err)
}

// lockKeyfile opens the keyfile and takes an exclusive flock on it. The
// lock is on an inode, and every edit replaces the inode by rename, so
// after the lock is granted we check that the path still names the inode
// we locked; if another edit renamed over it meanwhile, we lock again.
func lockKeyfile(path string, create bool) (*os.File, error) {
	for range 100 {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			if !create {
				return nil, fmt.Errorf("keyfile %s does not exist: %w", path, fs.ErrNotExist)
			}
			nf, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if cerr != nil && !errors.Is(cerr, fs.ErrExist) {
				return nil, fmt.Errorf("create keyfile: %w", cerr)
			}
			if nf != nil {
				nf.Close()
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open keyfile: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock keyfile: %w", err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lock keyfile %s: it keeps being replaced; is another program rewriting it?", path)
}

// atomicTemp marks the temporary file WriteAtomic writes before it
// renames it into place.
const atomicTemp = ".tmp"

// IsAtomicTemp reports whether name is a temporary file of WriteAtomic:
// its appearing, and its renaming into place, are a write, not anything
// removed.
func IsAtomicTemp(name string) bool {
	base := filepath.Base(name)
	return strings.HasPrefix(base, ".") && strings.Contains(base, atomicTemp)
}

// WriteAtomic replaces path with data: a temporary file in the same
// directory, written, fsynced, renamed over path, and the directory
// fsynced so that the rename itself survives a crash.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	var tmp *os.File
	var err error
	for i := 0; ; i++ {
		name := filepath.Join(dir, "."+filepath.Base(path)+atomicTemp+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(i))
		tmp, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err == nil || !errors.Is(err, fs.ErrExist) || i > 100 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(perm); err != nil { // O_CREATE is subject to umask
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
