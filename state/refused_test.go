// SPDX-License-Identifier: MIT

package state

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The compiled prices find what PriceFor finds, keyfile first, without
// allocating.
func TestPricesAgreeWithPriceFor(t *testing.T) {
	pricing := map[string]Price{"gpt-4o": {Input: f(9)}, "my-*": {Input: f(1), Output: f(2)}, "claude-haiku-4*": {Input: f(7)}}
	ps := NewPrices(pricing)
	for _, m := range []string{"gpt-4o", "gpt-4o-2024-08-06", "my-model", "claude-haiku-4-5", "claude-sonnet-4-5", "gemini-2.5-flash", "nosuch", ""} {
		want, wok := PriceFor(pricing, m)
		got, ok := ps.For(m)
		wc, _ := want.Cost(Counts{Input: 1e6, Output: 1e6})
		gc, _ := got.Cost(Counts{Input: 1e6, Output: 1e6})
		if ok != wok || gc != wc {
			t.Errorf("%q: For %v %v, PriceFor %v %v", m, gc, ok, wc, wok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ps.For("claude-sonnet-4-5") }); n != 0 {
		t.Errorf("a price lookup allocates %v times", n)
	}
}

// Refusals add up by code, saturate, clamp and are copied with their
// own map.
func TestRefusedCounts(t *testing.T) {
	var c Counts
	c.Add(Counts{Refused: map[string]int64{"all-keys-cooling": 2}})
	c.Add(Counts{Refused: map[string]int64{"all-keys-cooling": math.MaxInt64, "overloaded": 1}})
	if c.Refused["all-keys-cooling"] != math.MaxInt64 || c.RefusedCount() != math.MaxInt64 || c.Requests != 0 {
		t.Errorf("refused: %+v", c)
	}
	if !c.Clamp(MaxDayCount) || c.Refused["all-keys-cooling"] != MaxDayCount {
		t.Errorf("clamped: %+v", c)
	}
	cp := c.Copy()
	cp.Refused["overloaded"] = 9
	if c.Refused["overloaded"] != 1 {
		t.Error("Copy shares the map")
	}
}

// A usage file written before refusals were counted loads as it was; a
// row of refusals without a key loads, one of requests without a key is
// damaged.
func TestUsageFileWithRefusals(t *testing.T) {
	dir := t.TempDir()
	old := `{"version":1,"updated_at":"2026-11-24T10:00:00Z","rows":[
{"day":"2026-11-24","provider":"openai","key":"a","fingerprint":"f","model":"gpt-4o","requests":3,"successes":3,"input_tokens":1,"output_tokens":2,"cache_read_tokens":0,"cache_write_tokens":0,"reasoning_tokens":0}
]}`
	p := filepath.Join(dir, "usage.json")
	os.WriteFile(p, []byte(old), 0o600)
	u, err := LoadUsage(p)
	if err != nil || len(u.Rows) != 1 || u.Rows[0].Requests != 3 || u.Rows[0].Refused != nil {
		t.Fatalf("an old file: %v %+v", err, u)
	}
	u.Rows = append(u.Rows, UsageRow{UsageKey: UsageKey{Day: "2026-11-24", Provider: "openai", Model: "gpt-4o"}, Counts: Counts{Refused: map[string]int64{"all-keys-cooling": 4}}})
	os.WriteFile(p, u.Marshal(), 0o600)
	back, err := LoadUsage(p)
	if err != nil || len(back.Rows) != 2 {
		t.Fatalf("with a refused row: %v %+v", err, back)
	}
	for _, r := range back.Rows {
		if r.Key == "" && r.Refused["all-keys-cooling"] != 4 {
			t.Errorf("the refused row: %+v", r)
		}
	}
	if got := KeyDay(back.Rows, "2026-11-24"); len(got) != 1 {
		t.Errorf("KeyDay counts the provider's refusals as a key: %v", got)
	}
	os.WriteFile(p, []byte(`{"version":1,"rows":[{"day":"2026-11-24","provider":"openai","key":"","requests":1}]}`), 0o600)
	if _, err := LoadUsage(p); err == nil {
		t.Error("requests without a key loaded")
	}
}
