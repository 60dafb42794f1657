// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
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

// With no daemon, usage reads the state dir's usage files: rows from
// --since on, grouped as asked, priced from the keyfile, a total; --json
// has the same numbers for a script.
func TestUsageCommandFromTheUsageFiles(t *testing.T) {
	_, p := tempUser(t)
	writeKeyfile(t, p, listKeyfile+"\n[pricing.\"house-model\"]\ninput = 1.0\noutput = 2.0\n")
	row := func(day, key, model string, c state.Counts) state.UsageRow {
		return state.UsageRow{UsageKey: state.UsageKey{Day: day, Provider: "openai", Key: key, Fingerprint: "f" + key, Model: model}, Counts: c}
	}
	u := &state.Usage{Version: state.UsageVersion, Rows: []state.UsageRow{
		row("2026-11-20", "a", "house-model", state.Counts{Requests: 5, Successes: 5, Input: 5e6}),
		row("2026-11-23", "a", "house-model", state.Counts{Requests: 2, Successes: 2, Input: 1e6, Output: 1e6}),
		row("2026-11-24", "b", "mystery", state.Counts{Requests: 1, Failures: map[string]int64{"rate_limited": 1}, Input: 10}),
	}}
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := state.WriteAtomic(state.UsageFile(p.StateDir), u.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	in := UsageCommandInput{Paths: p, Since: "2026-11-23", By: []string{"key"}, Now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}

	s, out, errs := captured(t)
	if err := UsageCommand(context.Background(), in, s); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"KEY", "REQUESTS", "OK", "FAILED", "PARTIAL", "INPUT", "OUTPUT", "CACHE_READ", "CACHE_WRITE", "REASONING", "COST", "REFUSED"},
		{"openai/a@fa", "2", "2", "0", "0", "1000000", "1000000", "0", "0", "0", "$3.0000", "0"},
		{"openai/b@fb", "1", "0", "1", "0", "10", "0", "0", "0", "0", "?", "0"},
		{"TOTAL", "3", "2", "1", "0", "1000010", "1000000", "0", "0", "0", ">=$3.0000", "0"},
	}
	table, note, _ := strings.Cut(out.String(), "\n\n")
	lines := strings.Split(table, "\n")
	if len(lines) != len(want) {
		t.Fatalf("report:\n%s", out)
	}
	for i, l := range lines {
		if got := strings.Fields(l); !slices.Equal(got, want[i]) {
			t.Errorf("row %d: %q, want %q", i, got, want[i])
		}
	}
	if !strings.HasPrefix(note, "no price for mystery (") || errs.Len() != 0 {
		t.Errorf("after the table: %q; stderr %q", note, errs)
	}

	s, out, _ = captured(t)
	in.JSON = true
	if err := UsageCommand(context.Background(), in, s); err != nil {
		t.Fatal(err)
	}
	var rep usageReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	switch {
	case rep.Source != p.StateDir || rep.Since != "2026-11-23" || !slices.Equal(rep.By, []string{"key"}) || len(rep.Rows) != 2:
		t.Errorf("--json: %s", out)
	case rep.Rows[0].Key != "a" || rep.Rows[0].CostUSD == nil || *rep.Rows[0].CostUSD != 3 || rep.Rows[0].Model != "":
		t.Errorf("openai/a: %+v", rep.Rows[0])
	case rep.Rows[1].CostUSD != nil || !slices.Equal(rep.Rows[1].UnpricedModels, []string{"mystery"}) || rep.Rows[1].Failures["rate_limited"] != 1:
		t.Errorf("openai/b: %+v", rep.Rows[1])
	case rep.Total.Requests != 3 || rep.Total.CostUSD != nil || rep.Total.CostAtLeastUSD == nil || *rep.Total.CostAtLeastUSD != 3:
		t.Errorf("total: %+v", rep.Total)
	case !slices.Equal(rep.UnpricedModels, []string{"mystery"}) || rep.PricingError != "":
		t.Errorf("unpriced %q, pricing error %q", rep.UnpricedModels, rep.PricingError)
	}
}

// With nothing recorded since --since, usage says so and prints no table.
func TestUsageCommandWithNothingRecorded(t *testing.T) {
	_, p := tempUser(t)
	s, out, errs := captured(t)
	in := UsageCommandInput{Paths: p, Since: "today", By: []string{"key", "model"}, Now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	if err := UsageCommand(context.Background(), in, s); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 || errs.String() != "llmkey: no usage recorded since 2026-11-24\n" {
		t.Errorf("stdout %q, stderr %q", out, errs)
	}
}
