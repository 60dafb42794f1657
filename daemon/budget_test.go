// SPDX-License-Identifier: MIT

package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// What a restart seeds each key with: today's requests and tokens, and
// the cost of today and of this month (UTC) at the prices; a model
// without a price costs nothing, other months and the provider's
// refusals count nothing.
func TestSeedsOfTodayAndThisMonth(t *testing.T) {
	row := func(day, key, model string, c state.Counts) state.UsageRow {
		return state.UsageRow{UsageKey: state.UsageKey{Day: day, Provider: "openai", Key: key, Fingerprint: "f", Model: model}, Counts: c}
	}
	million := state.Counts{Requests: 1, Successes: 1, Input: 1_000_000}
	rows := []state.UsageRow{
		row("2026-11-24", "a", "gpt-4o", million),  // today: $2.50
		row("2026-11-24", "a", "mystery", million), // today, no price
		row("2026-11-02", "a", "gpt-4o", million),  // this month
		row("2026-10-31", "a", "gpt-4o", million),  // last month
		row("2026-11-24", "", "gpt-4o", state.Counts{Refused: map[string]int64{"overloaded": 5}}),
	}
	got := seeds(rows, time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), state.NewPrices(nil))
	a := got[state.UsageKey{Provider: "openai", Key: "a", Fingerprint: "f"}]
	want := rotate.Seed{Requests: 2, Tokens: 2_000_000, CostToday: 2.5 * rotate.NanoUSD, CostMonth: 5 * rotate.NanoUSD}
	if a != want || len(got) != 1 {
		t.Errorf("seeds %+v; want %+v alone", got, want)
	}
}

// Refusals go into the ledger's rows by code, and a snapshot's maps are
// its own.
func TestLedgerCountsRefusals(t *testing.T) {
	l := newLedger(nil, nil)
	k := state.UsageKey{Provider: "openai", Model: "gpt-4o"}
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	for range 3 {
		l.Add(now, k, state.Counts{Refused: map[string]int64{"all-keys-cooling": 1}})
	}
	l.Add(now, k, state.Counts{Refused: map[string]int64{"overloaded": 1}})
	rows, _ := l.snapshot()
	if len(rows) != 1 || rows[0].Refused["all-keys-cooling"] != 3 || rows[0].RefusedCount() != 4 || rows[0].Requests != 0 {
		t.Fatalf("rows %+v", rows)
	}
	rows[0].Refused["overloaded"] = 99
	if again, _ := l.snapshot(); again[0].Refused["overloaded"] != 1 {
		t.Error("a snapshot shares its refusals with the ledger")
	}
}

// The control API's hour of a key: a number a minute for each count and
// kind of failure, and a letter a minute for when it was set aside.
func TestKeyHistoryShape(t *testing.T) {
	var k rotate.KeyHistory
	k.Name = "a"
	k.Minutes[57] = rotate.Minute{Requests: 4, Tokens: 40, Cost: rotate.NanoUSD / 100, Cooling: true}
	k.Minutes[58] = rotate.Minute{Parked: true, Cooling: true, Failures: [rotate.FailureKinds]int{2, 0, 1}}
	k.Minutes[59] = rotate.Minute{Parked: true, Refused: 3}
	h := keyHistory(k)
	if len(h.Requests) != rotate.HistoryMinutes || h.Requests[57] != 4 || h.Tokens[57] != 40 || h.CostUSD[57] != 0.01 || h.Refused[59] != 3 {
		t.Errorf("counts: %+v", h)
	}
	if h.Failures["rate_limited"][58] != 2 || h.Failures["upstream"][58] != 1 || len(h.Failures) != int(rotate.FailureKinds) {
		t.Errorf("failures: %v", h.Failures)
	}
	if h.Aside != strings.Repeat(".", 57)+"cbp" {
		t.Errorf("aside %q", h.Aside)
	}
}

// A key with a dollar budget, its own or its group's, that served a
// model without a price is a problem status names; one without a budget
// is not.
func TestBlindBudgetIsAProblem(t *testing.T) {
	cfg := &state.Config{Groups: map[string]state.GroupConfig{"home": {BudgetUSDMonth: 10}}}
	ks := control.KeyStatus{Name: "a", UnpricedModel: "mystery", BudgetUSDDay: 5}
	if p := blindBudget("openai", ks, "", cfg); !strings.Contains(p, "openai/a served mystery today, which has no price") || !strings.Contains(p, `[pricing."mystery"]`) {
		t.Errorf("own budget: %q", p)
	}
	ks.BudgetUSDDay = 0
	if p := blindBudget("openai", ks, "home", cfg); p == "" {
		t.Error("a group's budget: no problem")
	}
	if p := blindBudget("openai", ks, "", cfg); p != "" {
		t.Errorf("no budget: %q", p)
	}
}
