// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/llmkey/llmkey/state"
)

// setupRecord is what undo needs to take setup's edit out of a tool's
// file, kept in the state dir: where setup put its bytes and what they
// replaced there (never a secret: setup refuses to replace one), and a
// hash of the file as setup wrote it, so that undo refuses a file changed
// since. Nothing else of the user's file is kept: tool files hold API
// keys, and nothing under the state dir may.
type setupRecord struct {
	Path    string      `json:"path"`
	Existed bool        `json:"existed"`
	Written string      `json:"written_sha256"`
	Edits   []setupEdit `json:"edits"`
	// Members are setup's values in a JSON file, for an undo after the
	// tool rewrote the rest of it.
	Members []setupMember `json:"members,omitempty"`
	// Before and After are whole files, as an older llmkey kept them:
	// read to undo its setup, never written again.
	Before []byte `json:"before,omitempty"`
	After  []byte `json:"after,omitempty"`
}

// setupEdit is one place where setup changed the file, in the bytes of
// the file it wrote.
type setupEdit struct {
	At      int    `json:"at"`
	Added   int    `json:"added"`   // bytes setup put at At
	Removed string `json:"removed"` // what they replaced
}

func setupRecordPath(p state.Paths, tool string) string {
	return state.SetupRecordFile(p.StateDir, tool)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// readSetupRecord reads the record of tool's setup (nil: none, or none
// that can be read); one an older llmkey wrote is turned into edits, and
// legacy says so: it is to be written anew.
func readSetupRecord(p state.Paths, tool string) (rec *setupRecord, legacy bool) {
	b, err := os.ReadFile(setupRecordPath(p, tool))
	if err != nil || json.Unmarshal(b, &rec) != nil || rec == nil {
		return nil, false
	}
	if rec.Written == "" && rec.After != nil {
		rec.Written, rec.Edits, legacy = sha256Hex(rec.After), diffEdits(rec.Before, rec.After), true
	}
	rec.Before, rec.After = nil, nil
	return rec, legacy
}

func writeSetupRecord(p state.Paths, tool string, rec setupRecord) error {
	if err := state.EnsurePrivateDir(filepath.Dir(setupRecordPath(p, tool))); err != nil {
		return err
	}
	b, _ := json.Marshal(rec)
	return state.WriteAtomic(setupRecordPath(p, tool), b, 0o600)
}

// restore is the file as it was before setup, from cur, the file setup
// wrote; false when cur is not that file.
func (r setupRecord) restore(cur []byte) ([]byte, bool) {
	if sha256Hex(cur) != r.Written {
		return nil, false
	}
	out := bytes.Clone(cur)
	for _, e := range slices.Backward(r.Edits) {
		if e.At < 0 || e.Added < 0 || e.At+e.Added > len(out) {
			return nil, false
		}
		out = slices.Concat(out[:e.At], []byte(e.Removed), out[e.At+e.Added:])
	}
	return out, true
}

// newSetupRecord is the record for writing updated over cur. After an
// earlier setup of the same file, undo still goes back to before the
// first one (with what the tool wrote since kept, for a JSON file it
// rewrote), unless llmkey's part was changed since: then to cur.
func newSetupRecord(prev *setupRecord, path string, cur, updated []byte, existed bool, t tool) (setupRecord, error) {
	original := cur
	if prev != nil && prev.Path == path && existed {
		if before, ok := prev.restore(cur); ok {
			original, existed = before, prev.Existed
		} else if before, ok := prev.restoreMembers(cur); ok { // the tool rewrote the file since
			original = before
		}
	}
	memberBase := original
	if len(bytes.TrimSpace(original)) == 0 && t.seed != "" {
		memberBase = []byte(t.seed)
	}
	var members []setupMember
	for _, m := range jsonChanges(memberBase, updated) {
		if t.scaffold == nil || !t.scaffold(m.Path) {
			members = append(members, m)
		}
	}
	edits := diffEdits(original, updated)
	for _, e := range edits {
		if looksSecret(e.Removed) {
			return setupRecord{}, secretRefusal(path, updated, e.At)
		}
	}
	for _, m := range members {
		if m.Was != nil && looksSecret(*m.Was) {
			return setupRecord{}, secretRefusal(path, updated, jsonOffset(updated, m.Path))
		}
	}
	return setupRecord{Path: path, Existed: existed, Written: sha256Hex(updated), Edits: edits, Members: members}, nil
}

// secretRefusal refuses a setup that would replace what looks like a
// key, at offset at of the file it would write.
func secretRefusal(path string, updated []byte, at int) error {
	line := bytes.Count(updated[:at], []byte("\n")) + 1
	return &Error{Code: ExitFailure,
		Err:  fmt.Errorf("%s: setup would replace what looks like an API key (line %d), and llmkey keeps no secret for its undo; nothing was written", path, line),
		Hint: "keep the key out of that setting (the tool can read it from an environment variable, which llmkey exec sets), then run setup again"}
}

// looksSecret reports whether s holds something shaped like an API key:
// a provider's key prefix, or a long run of letters and digits.
func looksSecret(s string) bool {
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		if len(w) < 20 {
			continue
		}
		for _, p := range []string{"sk-", "sk_", "AIza", "gsk_", "xai-", "pk-", "key-", "ghp_", "hf_", "r8_"} {
			if strings.HasPrefix(w, p) {
				return true
			}
		}
		if len(w) >= 32 && strings.ContainsFunc(w, unicode.IsLetter) && strings.ContainsAny(w, "0123456789") && !uuid.MatchString(w) {
			return true
		}
	}
	return false
}

var uuid = regexp.MustCompile(`^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$`)

// diffEdits is the smallest set of edits, found by lines and then
// narrowed to bytes, that turns a into b.
func diffEdits(a, b []byte) []setupEdit {
	al, bl := splitLines(a), splitLines(b)
	var out []setupEdit
	boff := 0 // byte offset in b of line j
	j := 0
	for _, h := range diffLines(al, bl) {
		for ; j < h.b0; j++ {
			boff += len(bl[j])
		}
		rm, add := strings.Join(al[h.a0:h.a1], ""), strings.Join(bl[h.b0:h.b1], "")
		pre := commonPrefix(rm, add)
		rm, add = rm[pre:], add[pre:]
		suf := commonSuffix(rm, add)
		out = append(out, setupEdit{At: boff + pre, Added: len(add) - suf, Removed: rm[:len(rm)-suf]})
	}
	return out
}

func splitLines(b []byte) []string {
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func commonSuffix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[len(a)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i
}

// hunk replaces lines a0..a1 of a with lines b0..b1 of b.
type hunk struct{ a0, a1, b0, b1 int }

// maxDiffSteps bounds diffLines's work (and its trace, which grows with
// the square of it): past it, the lines between the common head and tail
// are one hunk.
const maxDiffSteps = 256

// diffLines is the shortest edit script from a to b (Myers), as hunks in
// order. Setup changes few lines, so it takes few steps.
func diffLines(a, b []string) []hunk {
	n, m := len(a), len(b)
	off := n + m + 1
	v := make([]int, 2*off+1)
	var trace [][]int
	for d := 0; d <= n+m; d++ {
		if d > maxDiffSteps {
			return oneHunk(a, b)
		}
		trace = append(trace, slices.Clone(v))
		for k := -d; k <= d; k += 2 {
			x := v[off+k-1] + 1
			if k == -d || k != d && v[off+k-1] < v[off+k+1] {
				x = v[off+k+1]
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				return hunksOf(trace, off, n, m)
			}
		}
	}
	return nil
}

// oneHunk is a to b as one hunk between their common head and tail.
func oneHunk(a, b []string) []hunk {
	h := 0
	for h < len(a) && h < len(b) && a[h] == b[h] {
		h++
	}
	t := 0
	for t < len(a)-h && t < len(b)-h && a[len(a)-1-t] == b[len(b)-1-t] {
		t++
	}
	return []hunk{{a0: h, a1: len(a) - t, b0: h, b1: len(b) - t}}
}

// hunksOf walks the trace of diffLines back from the end.
func hunksOf(trace [][]int, off, x, y int) []hunk {
	var hs []hunk
	for d := len(trace) - 1; d > 0; d-- {
		v, k := trace[d], x-y
		prevK := k - 1
		if k == -d || k != d && v[off+k-1] < v[off+k+1] {
			prevK = k + 1
		}
		px := v[off+prevK]
		py := px - prevK
		for x > px && y > py {
			x, y = x-1, y-1
		}
		h := hunk{a0: px, a1: x, b0: py, b1: y} // one line, in or out
		if n := len(hs); n > 0 && hs[n-1].a0 == h.a1 && hs[n-1].b0 == h.b1 {
			hs[n-1].a0, hs[n-1].b0 = h.a0, h.b0
		} else {
			hs = append(hs, h)
		}
		x, y = px, py
	}
	slices.Reverse(hs)
	return hs
}
