// SPDX-License-Identifier: MIT

package state

import (
	"fmt"
	"os"
	"syscall"
)

// KeyfileError is any problem with the keyfile's contents: where it is
// (file, line when known, field) and how to fix it. Callers map it to the
// "keyfile" exit code with errors.As.
type KeyfileError struct {
	Path  string
	Line  int    // 1-based; 0 when the problem has no single line
	Field string // e.g. "key[2].provider"; empty when not about one field
	Msg   string
	Hint  string
}

func (e *KeyfileError) Error() string {
	loc := e.Path
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.Path, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("keyfile %s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("keyfile %s: %s", loc, e.Msg)
}

// HintText is read by the CLI to print a "hint:" line.
func (e *KeyfileError) HintText() string { return e.Hint }

// PathError is a file or directory llmkey refuses to use as it is: wrong
// permissions, wrong owner, wrong type.
type PathError struct {
	Path    string
	Problem string
	Hint    string
	// Keyfile is set when the path is the keyfile (or its link), whose
	// problems have an exit code of their own; a state or runtime dir's
	// do not.
	Keyfile bool
}

func (e *PathError) Error() string    { return fmt.Sprintf("%s %s", e.Path, e.Problem) }
func (e *PathError) HintText() string { return e.Hint }

// NotFoundError means a PROVIDER/NAME that is not in the keyfile.
type NotFoundError struct {
	Ref  string
	Path string
	// Suggest is the closest key there is, for a misspelt one.
	Suggest string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("no key %s in %s", e.Ref, e.Path) }
func (e *NotFoundError) HintText() string {
	if e.Suggest != "" {
		return fmt.Sprintf("did you mean %s? 'llmkey list' shows the keys there are", e.Suggest)
	}
	return "'llmkey list' shows the keys there are"
}

// KeyNotFound is the error for PROVIDER/NAME missing from c, with the
// closest key it has.
func (c *Config) KeyNotFound(provider, name string) *NotFoundError {
	var refs []string
	for _, k := range c.Keys {
		refs = append(refs, k.Ref())
	}
	ref := provider + "/" + name
	return &NotFoundError{Ref: ref, Path: c.Path, Suggest: closest(ref, refs)}
}

// DuplicateError means an add of a PROVIDER/NAME the keyfile already has.
type DuplicateError struct {
	Ref  string
	Path string
	Line int
}

func (e *DuplicateError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("key %s already exists in %s", e.Ref, e.Path)
	}
	return fmt.Sprintf("key %s already exists in %s:%d", e.Ref, e.Path, e.Line)
}
func (e *DuplicateError) HintText() string {
	return "pick another name, or 'llmkey rm " + e.Ref + "' first to replace it"
}

func ownerUID(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
