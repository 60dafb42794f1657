// SPDX-License-Identifier: MIT

package daemon

import (
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/state"
)

func TestLedgerCountsAndSnapshots(t *testing.T) {
	l := newLedger(nil, []state.UsageRow{{UsageKey: state.UsageKey{Day: "2026-11-24", Provider: "openai", Key: "a", Fingerprint: "f", Model: "m"},
		Counts: state.Counts{Requests: 2, Successes: 2, Input: 10}}})
	if l.generation() != 0 {
		t.Error("a loaded ledger is not a change")
	}
	k := state.UsageKey{Provider: "openai", Key: "a", Fingerprint: "f", Model: "m"} // the day comes from the time
	l.Add(time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), k, state.Counts{Requests: 1, Failures: map[string]int64{"rate-limited": 1}})
	l.Add(time.Date(2026, 11, 24, 23, 59, 0, 0, time.UTC), k, state.Counts{Requests: 1, Successes: 1, Input: 5, Output: 3, CacheWrite: 2})
	rows, gen := l.snapshot()
	if gen != 2 || len(rows) != 1 || rows[0].Requests != 4 || rows[0].Input != 15 || rows[0].Failures["rate-limited"] != 1 {
		t.Fatalf("rows %+v gen %d", rows, gen)
	}
	rows[0].Failures["rate-limited"] = 99 // a copy
	if again, _ := l.snapshot(); again[0].Failures["rate-limited"] != 1 {
		t.Error("a snapshot shares its maps with the ledger")
	}
	rows, _ = l.snapshot()
	today := state.KeyDay(rows, "2026-11-24")[state.UsageKey{Provider: "openai", Key: "a", Fingerprint: "f"}]
	if today.Requests != 4 || today.Tokens() != 20 {
		t.Errorf("today: %+v", today)
	}
	// The next UTC day is a row of its own.
	l.Add(time.Date(2026, 11, 25, 0, 0, 1, 0, time.UTC), k, state.Counts{Requests: 1})
	if rows, _ := l.snapshot(); len(rows) != 2 {
		t.Errorf("after midnight UTC: %+v", rows)
	}
}

// One answer's counts are held between 0 and state.MaxAnswerTokens, a
// row's at state.MaxDayCount, and only the first answer out of range is
// logged.
func TestLedgerBoundsAbsurdCounts(t *testing.T) {
	var logged strings.Builder
	l := newLedger(slog.New(slog.NewTextHandler(&logged, nil)), nil)
	k := state.UsageKey{Provider: "openai", Key: "a", Fingerprint: "f", Model: "m"}
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	for range 3 {
		l.Add(now, k, state.Counts{Requests: 1, Successes: 1, Input: -7, Output: math.MaxInt64, CacheRead: 3})
	}
	rows, _ := l.snapshot()
	if c := rows[0].Counts; c.Input != 0 || c.Output != 3*state.MaxAnswerTokens || c.CacheRead != 9 || c.Requests != 3 {
		t.Errorf("three absurd answers: %+v", c)
	}
	if n := strings.Count(logged.String(), "out of range"); n != 1 || !strings.Contains(logged.String(), "output=9223372036854775807") {
		t.Errorf("%d log lines for three absurd answers:\n%s", n, logged.String())
	}
	for range 2000 {
		l.Add(now, k, state.Counts{Requests: 1, Output: math.MaxInt64})
	}
	if rows, _ := l.snapshot(); rows[0].Output != state.MaxDayCount {
		t.Errorf("a row of 2003 answers at the bound: %d output tokens", rows[0].Output)
	}
}
