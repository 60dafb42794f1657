// SPDX-License-Identifier: MIT

package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// RenameUsage gives the rows of PROVIDER/FROM in rows to PROVIDER/TO,
// every day's and every secret's it had: a renamed key keeps its
// history. A row TO has already (the same day, secret, model and label)
// takes FROM's counts. It reports whether any row moved.
func RenameUsage(rows []UsageRow, provider, from, to string) ([]UsageRow, bool) {
	at := map[UsageKey]int{}
	out := make([]UsageRow, 0, len(rows))
	moved := false
	for _, r := range rows {
		if r.Provider == provider && r.Key == from {
			r.Key, moved = to, true
		}
		if i, ok := at[r.UsageKey]; ok {
			out[i].Counts.Add(r.Counts)
			out[i].Counts.Clamp(MaxDayCount)
			continue
		}
		at[r.UsageKey] = len(out)
		out = append(out, r)
	}
	return out, moved
}

// RenameInStateDir does in the state dir what a running daemon does for
// a rename: the usage files' rows and the hand-made disable of
// PROVIDER/FROM become PROVIDER/TO's. The caller keeps every daemon off
// the state dir meanwhile (it holds its lock). A file that is not there
// is nothing to rename.
func RenameInStateDir(stateDir, provider, from, to string) error {
	for _, p := range []string{UsageFile(stateDir), UsageRecentFile(stateDir)} {
		u, err := LoadUsage(p)
		if err != nil {
			return err
		}
		rows, moved := RenameUsage(u.Rows, provider, from, to)
		if !moved {
			continue
		}
		u.Rows, u.UpdatedAt = rows, time.Now().UTC()
		if err := WriteAtomic(p, u.Marshal(), 0o600); err != nil {
			return err
		}
	}
	return renameDisabled(DisabledFile(stateDir), provider+"/"+from, provider+"/"+to)
}

// renameDisabled moves the entry from of the keys disabled by hand to to.
func renameDisabled(path, from, to string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return &CorruptError{Path: path, Err: err}
	}
	v, ok := all[from]
	if !ok {
		return nil
	}
	delete(all, from)
	all[to] = v
	out, _ := json.MarshalIndent(all, "", "  ")
	return WriteAtomic(path, append(out, '\n'), 0o600)
}
