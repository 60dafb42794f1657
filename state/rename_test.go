// SPDX-License-Identifier: MIT

package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A renamed key's usage rows, of every day and in both files, and its
// hand-made disable, go to its new name; a row the new name had already
// adds up with the old one's; other keys' rows stay.
func TestRenameInStateDir(t *testing.T) {
	dir := t.TempDir()
	row := func(day, key, fp string, reqs int64) UsageRow {
		return UsageRow{UsageKey: UsageKey{Day: day, Provider: "openai", Key: key, Fingerprint: fp, Model: "gpt-4o"}, Counts: Counts{Requests: reqs}}
	}
	hist := Usage{Version: UsageVersion, Rows: []UsageRow{row("2026-01-01", "a", "f1", 3), row("2026-01-01", "b", "f2", 5)}}
	recent := Usage{Version: UsageVersion, Rows: []UsageRow{row("2026-01-05", "a", "f1", 7), row("2026-01-05", "work", "f1", 1)}}
	os.WriteFile(UsageFile(dir), hist.Marshal(), 0o600)
	os.WriteFile(UsageRecentFile(dir), recent.Marshal(), 0o600)
	os.WriteFile(DisabledFile(dir), []byte(`{"openai/a": {"until": "2030-01-01T00:00:00Z"}, "openai/b": {}}`), 0o600)
	if err := RenameInStateDir(dir, "openai", "a", "work"); err != nil {
		t.Fatal(err)
	}
	u, err := LoadUsageDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range u.Rows {
		got[r.Day+" "+r.Key] += r.Requests
	}
	want := map[string]int64{"2026-01-01 work": 3, "2026-01-01 b": 5, "2026-01-05 work": 8}
	if len(got) != len(want) {
		t.Errorf("rows after the rename: %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("rows after the rename: %v, want %v", got, want)
		}
	}
	b, _ := os.ReadFile(DisabledFile(dir))
	if !strings.Contains(string(b), `"openai/work"`) || strings.Contains(string(b), `"openai/a"`) || !strings.Contains(string(b), "2030-01-01") || !strings.Contains(string(b), `"openai/b"`) {
		t.Errorf("disabled.json after the rename:\n%s", b)
	}
	// A state dir with nothing in it: nothing to do.
	if err := RenameInStateDir(filepath.Join(dir, "empty"), "openai", "a", "b"); err != nil {
		t.Errorf("a state dir without files: %v", err)
	}
}
