// SPDX-License-Identifier: MIT

package state

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

func TestPriceCost(t *testing.T) {
	pricing := map[string]Price{
		"gpt-4o":   {Input: f(2.5), Output: f(10)},
		"claude-*": {Input: f(3), Output: f(15), CacheRead: f(0.3), CacheWrite: f(3.75)},
	}
	c := Counts{Input: 1_000_000, Output: 500_000}
	p, ok := PriceFor(pricing, "gpt-4o")
	if !ok {
		t.Fatal("gpt-4o has a price")
	}
	if cost, ok := p.Cost(c); !ok || math.Abs(cost-7.5) > 1e-9 {
		t.Errorf("cost = %v %v, want 7.5", cost, ok)
	}
	// A kind of token without a price makes the cost unknown, not lower.
	if _, ok := p.Cost(Counts{Input: 10, CacheRead: 5}); ok {
		t.Error("cache reads without a cache_read price were priced")
	}
	p, ok = PriceFor(pricing, "claude-sonnet-4")
	if !ok {
		t.Fatal("a pattern should match")
	}
	if cost, ok := p.Cost(Counts{Input: 100, Output: 200, CacheRead: 1000, CacheWrite: 400}); !ok || math.Abs(cost-(300+3000+300+1500)/1e6) > 1e-12 {
		t.Errorf("claude cost = %v %v", cost, ok)
	}
	if _, ok := priceIn(pricing, "gpt-4o-mini"); ok {
		t.Error("an exact name must not match a longer model")
	}
	// Out of the box, the common models have a price; the keyfile's wins.
	for _, m := range []string{"gpt-4o-mini", "gpt-4o-2024-08-06", "gpt-5", "claude-sonnet-4-5-20250929", "gemini-2.5-flash", "gemini-2.5-pro"} {
		if p, ok := PriceFor(nil, m); !ok || p.Input == nil || p.Output == nil {
			t.Errorf("no built-in price for %s", m)
		}
	}
	mine := 1.0
	if p, _ := PriceFor(map[string]Price{"gpt-5": {Input: &mine}}, "gpt-5"); p.Input == nil || *p.Input != 1 || p.Output != nil {
		t.Errorf("the keyfile's price does not win: %+v", p)
	}
}

func TestUsageFileRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	p := UsageFile(dir)
	u, err := LoadUsage(p)
	if err != nil || len(u.Rows) != 0 {
		t.Fatalf("missing file: %v %+v", err, u)
	}
	u.Rows = []UsageRow{
		{UsageKey{Day: "2026-11-24", Provider: "openai", Key: "b", Fingerprint: "f2", Model: "m"}, Counts{Requests: 3, Successes: 2, Failures: map[string]int64{"rate-limited": 1}, Input: 7}},
		{UsageKey{Day: "2026-11-23", Provider: "openai", Key: "a", Fingerprint: "f1", Model: "m"}, Counts{Requests: 1, Successes: 1, Output: 9}},
	}
	if err := os.WriteFile(p, u.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := LoadUsage(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != 2 || back.Rows[0].Day != "2026-11-23" || back.Rows[1].Failures["rate-limited"] != 1 || back.Rows[1].Input != 7 {
		t.Fatalf("round trip: %+v", back.Rows)
	}

	// A torn write: half a file.
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)/2], 0o600)
	_, err = LoadUsage(p)
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("torn file: want *CorruptError, got %v", err)
	}
	to, err := SetAside(p, time.Date(2026, 11, 24, 10, 15, 0, 0, time.UTC))
	if err != nil || filepath.Base(to) != "usage.json.damaged-20261124T101500Z" {
		t.Fatalf("set aside: %q %v", to, err)
	}
	if kept, _ := os.ReadFile(to); len(kept) != len(b)/2 {
		t.Error("the damaged file was not kept as it was")
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Error("the damaged file is still in place")
	}
	os.WriteFile(p, []byte(`{"version":9,"rows":[]}`), 0o600)
	if _, err := LoadUsage(p); !errors.As(err, &ce) || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("unknown version: %v", err)
	}
}

func TestUsageDirMergesBothFiles(t *testing.T) {
	dir := t.TempDir()
	k := UsageKey{Day: "2026-11-22", Provider: "openai", Key: "a", Fingerprint: "f", Model: "m"}
	old := Usage{Version: UsageVersion, Rows: []UsageRow{{k, Counts{Requests: 1}}}}
	os.WriteFile(UsageFile(dir), old.Marshal(), 0o600)
	// A crash after the history was written but before the recent file
	// dropped the row: the row is in both, and counts once.
	k2 := k
	k2.Day = "2026-11-24"
	recent := Usage{Version: UsageVersion, Rows: []UsageRow{{k, Counts{Requests: 1}}, {k2, Counts{Requests: 5}}}}
	os.WriteFile(UsageRecentFile(dir), recent.Marshal(), 0o600)
	u, err := LoadUsageDir(dir)
	if err != nil || len(u.Rows) != 2 {
		t.Fatalf("%v %+v", err, u)
	}
	var n int64
	for _, r := range u.Rows {
		n += r.Requests
	}
	if n != 6 {
		t.Errorf("requests %d, want 6", n)
	}
	if RecentFrom(time.Date(2026, 11, 24, 0, 30, 0, 0, time.UTC)) != "2026-11-23" {
		t.Error("RecentFrom")
	}
	os.WriteFile(UsageRecentFile(dir), []byte("{"), 0o600)
	var ce *CorruptError
	if _, err := LoadUsageDir(dir); !errors.As(err, &ce) || ce.Path != UsageRecentFile(dir) {
		t.Errorf("a damaged recent file: %v", err)
	}
}

// Sums of counts hold at the largest int64 instead of wrapping, and Clamp
// holds one answer's or one row's counts to their range.
func TestCountsSaturateAndClamp(t *testing.T) {
	c := Counts{Input: math.MaxInt64 - 1, Failures: map[string]int64{"server": math.MaxInt64}}
	c.Add(Counts{Input: 5, Output: math.MaxInt64, CacheWrite: 3, Failures: map[string]int64{"server": 1, "transport": 1}})
	if c.Input != math.MaxInt64 || c.Failures["server"] != math.MaxInt64 || c.Tokens() != math.MaxInt64 || c.FailureCount() != math.MaxInt64 {
		t.Errorf("saturating sums: %+v, tokens %d, failures %d", c, c.Tokens(), c.FailureCount())
	}
	a := Counts{Requests: 1, Successes: 1, Input: -7, Output: math.MaxInt64, CacheRead: 12, Failures: map[string]int64{"x": -1}}
	if !a.Clamp(MaxAnswerTokens) || a.Input != 0 || a.Output != MaxAnswerTokens || a.CacheRead != 12 || a.Requests != 1 || a.Failures["x"] != 0 {
		t.Errorf("an answer clamped: %+v", a)
	}
	if a.Clamp(MaxAnswerTokens) {
		t.Error("counts in range reported out of range")
	}
}

// A usage file that holds counts no answer could make (negative, near
// the largest int64) is read with each held to its range, and says how
// many rows were; the file's other rows are kept as they are.
func TestUsageFileWithAbsurdCountsReadsSanely(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(UsageFile(dir), []byte(`{"version":1,"updated_at":"2026-11-24T10:00:00Z","rows":[
{"day":"2026-11-23","provider":"openai","key":"a","fingerprint":"f","model":"gpt-4o","requests":-3,"successes":1,"input_tokens":-7,"output_tokens":9223372036854775807,"cache_read_tokens":0,"cache_write_tokens":0,"reasoning_tokens":0},
{"day":"2026-11-23","provider":"openai","key":"b","fingerprint":"g","model":"gpt-4o","requests":2,"successes":2,"input_tokens":10,"output_tokens":20,"cache_read_tokens":0,"cache_write_tokens":0,"reasoning_tokens":0}
]}`), 0o600)
	u, err := LoadUsageDir(dir)
	if err != nil {
		t.Fatalf("absurd counts made the file unreadable: %v", err)
	}
	if u.Clamped != 1 || len(u.Rows) != 2 {
		t.Fatalf("clamped %d rows of %+v", u.Clamped, u.Rows)
	}
	bad, good := u.Rows[0].Counts, u.Rows[1].Counts
	if bad.Requests != 0 || bad.Input != 0 || bad.Output != MaxDayCount || good.Input != 10 || good.Output != 20 {
		t.Errorf("read back: %+v and %+v", bad, good)
	}
}
