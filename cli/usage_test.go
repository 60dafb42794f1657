// SPDX-License-Identifier: MIT

package cli

import (
	"testing"
	"time"

	"github.com/llmkey/llmkey/state"
)

func TestSinceDay(t *testing.T) {
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"":           "",
		"2026-11-01": "2026-11-01",
		"7d":         "2026-11-17",
		"36h":        "2026-11-22",
		"0d":         "2026-11-24",
		"90m":        "2026-11-24",
	} {
		if got, err := sinceDay(in, now); err != nil || got != want {
			t.Errorf("--since %q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday-ish", "-2d", "7 days", "2026-13-01"} {
		if _, err := sinceDay(in, now); ExitCode(err) != ExitUsage {
			t.Errorf("--since %q: %v", in, err)
		}
	}
}

func TestParseBy(t *testing.T) {
	by, err := parseBy("day, key,day")
	if err != nil || len(by) != 2 || by[0] != "day" || by[1] != "key" {
		t.Errorf("--by day,key,day: %v %v", by, err)
	}
	if _, err := parseBy("key,colour"); ExitCode(err) != ExitUsage {
		t.Errorf("--by key,colour: %v", err)
	}
}

// aggregate groups by what was asked, counts everything from --since on,
// prices each row by its own model, and leaves a cost unknown only where
// a model used has no price.
func TestAggregate(t *testing.T) {
	row := func(day, key, model string, in, out int64) state.UsageRow {
		return state.UsageRow{UsageKey: state.UsageKey{Day: day, Provider: "openai", Key: key, Fingerprint: "f" + key, Model: model},
			Counts: state.Counts{Requests: 1, Successes: 1, Input: in, Output: out}}
	}
	rows := []state.UsageRow{
		row("2026-11-20", "a", "gpt-4o", 1e6, 0),
		row("2026-11-23", "a", "gpt-4o", 1e6, 1e6),
		row("2026-11-23", "b", "gpt-4o-mini", 1e6, 0),
		row("2026-11-24", "b", "mystery", 10, 0),
	}
	in, out := 2.5, 10.0
	mini := 0.15
	pricing := map[string]state.Price{"gpt-4o": {Input: &in, Output: &out}, "gpt-4o-*": {Input: &mini}}

	lines, total := aggregate(rows, "2026-11-23", []string{"key"}, pricing)
	if len(lines) != 2 || lines[0].Key != "a" || lines[1].Key != "b" {
		t.Fatalf("by key: %+v", lines)
	}
	if lines[0].Requests != 1 || lines[0].CostUSD == nil || *lines[0].CostUSD != 12.5 {
		t.Errorf("openai/a since 2026-11-23: %+v", lines[0])
	}
	if lines[1].CostUSD != nil || len(lines[1].UnpricedModels) != 1 || lines[1].UnpricedModels[0] != "mystery" {
		t.Errorf("openai/b, with an unpriced model: %+v", lines[1])
	}
	if total.Requests != 3 || total.Input != 2e6+10 || total.CostUSD != nil {
		t.Errorf("total: %+v", total)
	}

	lines, _ = aggregate(rows, "", []string{"day", "model"}, pricing)
	if len(lines) != 4 || lines[0].Day != "2026-11-20" || lines[0].Key != "" || lines[0].Model != "gpt-4o" {
		t.Errorf("by day and model: %+v", lines)
	}
	if c := lines[2].CostUSD; lines[2].Model != "gpt-4o-mini" || c == nil || *c != 0.15 {
		t.Errorf("a model priced by a pattern: %+v", lines[2])
	}
}
