// SPDX-License-Identifier: MIT

package rotate

import (
	"strings"
	"testing"
	"time"
)

// spendOn takes a key and reports a success that cost cost nano-dollars;
// it returns the key's name.
func spendOn(t *testing.T, p *Pool, cost int64) string {
	t.Helper()
	l, d := p.Acquire("", nil)
	if d != nil {
		t.Fatalf("no key: %s %s", d.Code, d.Detail)
	}
	l.Done(ok, Spend{Tokens: 10, Cost: cost})
	return l.Name
}

// A key over its daily dollar budget is limited until the UTC day ends,
// says why and what it spent, and serves again the next day.
func TestDailyDollarBudget(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "personal", BudgetDay: 100_000}) // $0.0001
	spendOn(t, p, 92_500)
	if v, _, _ := p.View(); v[0].State != Ready || v[0].CostToday != 92_500 {
		t.Fatalf("under its budget: %+v", v[0])
	}
	spendOn(t, p, 92_500)
	midnight := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	_, d := p.Acquire("", nil)
	if d == nil || d.Code != AllKeysCooling || !d.Until.Equal(midnight) || !strings.Contains(d.Detail, "daily budget") {
		t.Fatalf("over its budget: %+v", d)
	}
	v, _, _ := p.View()
	if v[0].State != Limited || !v[0].Until.Equal(midnight) || v[0].Reason != "over its daily budget: spent $0.000185 of $0.0001 today (UTC)" {
		t.Errorf("view over its budget: %+v", v[0])
	}
	clk.now = midnight.Add(-time.Second)
	if _, d := p.Acquire("", nil); d == nil {
		t.Fatal("served a second before midnight")
	}
	clk.now = midnight
	if n := spendOn(t, p, 1); n != "personal" {
		t.Fatalf("the next day: %s", n)
	}
	if v, _, _ := p.View(); v[0].State != Ready || v[0].CostToday != 1 || v[0].CostMonth != 185_001 {
		t.Errorf("the next day: %+v", v[0])
	}
}

// A monthly budget holds until the first of the next UTC month; the
// month's spend starts again then, and days within it do not reset it.
func TestMonthlyDollarBudget(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a", BudgetMonth: 5 * NanoUSD})
	clk.now = time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	spendOn(t, p, 3*NanoUSD)
	clk.now = clk.now.Add(2 * time.Hour) // the 30th: another day, the same month
	spendOn(t, p, 2*NanoUSD)
	first := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if _, d := p.Acquire("", nil); d == nil || !d.Until.Equal(first) {
		t.Fatalf("over its monthly budget: %+v", d)
	}
	if v, _, _ := p.View(); v[0].State != Limited || !strings.Contains(v[0].Reason, "monthly budget: spent $5.00 of $5.00") {
		t.Errorf("view: %+v", v[0])
	}
	clk.now = first
	spendOn(t, p, 1)
	if v, _, _ := p.View(); v[0].CostMonth != 1 || v[0].CostToday != 1 {
		t.Errorf("a new month: %+v", v[0])
	}
}

// A group's budget holds every key of the group, together; a key of
// another group serves on.
func TestGroupDollarBudget(t *testing.T) {
	p, clk := newTestPool(RoundRobin)
	p.Update(Policy{Strategy: RoundRobin, Groups: map[string]Limits{"home": {BudgetDay: NanoUSD}}},
		[]KeySpec{{Name: "a", Group: "home", Fingerprint: "a"}, {Name: "b", Group: "home", Fingerprint: "b"}, {Name: "work", Fingerprint: "w"}})
	for range 4 {
		spendOn(t, p, NanoUSD/2)
	}
	for range 3 {
		if n := spendOn(t, p, 1); n != "work" {
			t.Fatalf("a key of the spent group served: %s", n)
		}
	}
	v, _, _ := p.View()
	if v[0].State != Limited || !strings.Contains(v[0].Reason, "group home: over the group's daily budget") || v[2].State != Ready {
		t.Errorf("view: %+v", v)
	}
	clk.now = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	if got := sequence(t, p, 3); !strings.Contains(got, "a") || !strings.Contains(got, "b") {
		t.Errorf("the next day: %s", got)
	}
}

// What a key spent before a restart counts toward its dollar budgets,
// today's and this month's, and its group's.
func TestSeededDollarBudget(t *testing.T) {
	p, _ := newTestPool(RoundRobin)
	p.Update(Policy{Strategy: RoundRobin, Groups: map[string]Limits{"g": {BudgetMonth: 10 * NanoUSD}}},
		[]KeySpec{{Name: "day", BudgetDay: NanoUSD, Fingerprint: "d"}, {Name: "month", Group: "g", Fingerprint: "m"}})
	p.SeedToday("day", Seed{CostToday: NanoUSD, CostMonth: 4 * NanoUSD})
	p.SeedToday("month", Seed{CostToday: 0, CostMonth: 10 * NanoUSD})
	v, _, _ := p.View()
	if v[0].State != Limited || v[0].CostMonth != 4*NanoUSD || v[1].State != Limited {
		t.Errorf("seeded: %+v", v)
	}
}

// An answer of a model without a price counts nothing toward the
// budgets, and the key says so for today.
func TestUnpricedModelCountsNothing(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a", BudgetDay: 1})
	l, _ := p.Acquire("mystery", nil)
	l.Done(ok, Spend{Tokens: 500, Unpriced: "mystery"})
	v, _, _ := p.View()
	if v[0].State != Ready || v[0].Unpriced != "mystery" || v[0].CostToday != 0 {
		t.Errorf("after an unpriced answer: %+v", v[0])
	}
	clk.now = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	if v, _, _ := p.View(); v[0].Unpriced != "" {
		t.Errorf("the next day still says %q", v[0].Unpriced)
	}
}
