// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type fakeClock struct{ now time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

// Acquire is Take for a request that names only a model and the keys
// tried before it: what most of these tests ask.
func (p *Pool) Acquire(model string, tried []string) (Lease, *Denial) {
	return p.Take(Ask{Model: model, Tried: tried})
}

func newTestPool(strategy Strategy, specs ...KeySpec) (*Pool, *fakeClock) {
	clk := &fakeClock{now: t0}
	p := NewPool("openai", clk)
	for i := range specs {
		if specs[i].Fingerprint == "" {
			specs[i].Fingerprint = "fp-" + specs[i].Name
		}
	}
	p.Update(Policy{Strategy: strategy, ProbeInterval: time.Minute}, specs)
	return p, clk
}

func keys(names ...string) []KeySpec {
	var out []KeySpec
	for _, n := range names {
		out = append(out, KeySpec{Name: n})
	}
	return out
}

// pickDone acquires and at once reports o; it returns the key's name.
func pickDone(t *testing.T, p *Pool, model string, o Outcome) string {
	t.Helper()
	l, d := p.Acquire(model, nil)
	if d != nil {
		t.Fatalf("no key: %s %s", d.Code, d.Detail)
	}
	l.Done(o, Spend{})
	return l.Name
}

var ok = Outcome{Class: Success, Status: 200}

func TestModelsAllowList(t *testing.T) {
	p, _ := newTestPool(RoundRobin, KeySpec{Name: "mini", Models: []string{"gpt-4o-mini*"}}, KeySpec{Name: "all"})
	for range 3 {
		if n := pickDone(t, p, "gpt-5", ok); n != "all" {
			t.Errorf("gpt-5 went to %s", n)
		}
	}
	if got := fmt.Sprintln(pickDone(t, p, "gpt-4o-mini-2024", ok), pickDone(t, p, "gpt-4o-mini-2024", ok)); got != "mini all\n" && got != "all mini\n" {
		t.Errorf("gpt-4o-mini: %s", got)
	}
	p, _ = newTestPool(RoundRobin, KeySpec{Name: "mini", Models: []string{"gpt-4o-mini"}})
	if _, d := p.Acquire("gpt-5", nil); d == nil || d.Code != "no-keys" || !strings.Contains(d.Detail, `"gpt-5"`) {
		t.Errorf("no key allows the model: %+v", d)
	}
}

func TestEditedKeyIsTriedAtOnce(t *testing.T) {
	p, _ := newTestPool(FillFirst, keys("a", "b")...)
	pickDone(t, p, "", Outcome{Class: Quota, Status: 429})
	if n := pickDone(t, p, "", ok); n != "b" {
		t.Fatal("quota-parked a served")
	}
	// Reload with the same entry: still parked.
	p.Update(Policy{Strategy: FillFirst, ProbeInterval: time.Minute}, []KeySpec{{Name: "a", Fingerprint: "fp-a"}, {Name: "b", Fingerprint: "fp-b"}})
	if n := pickDone(t, p, "", ok); n != "b" {
		t.Fatal("a reload unparked an unchanged key")
	}
	// A new secret, or any other edit of the entry: tried at once.
	p.Update(Policy{Strategy: FillFirst, ProbeInterval: time.Minute}, []KeySpec{{Name: "a", Fingerprint: "fp-a2"}, {Name: "b", Fingerprint: "fp-b"}})
	if n := pickDone(t, p, "", ok); n != "a" {
		t.Fatal("a new secret was not tried at once")
	}
	pickDone(t, p, "", Outcome{Class: Quota, Status: 429})
	p.Update(Policy{Strategy: FillFirst, ProbeInterval: time.Minute}, []KeySpec{{Name: "a", Fingerprint: "fp-a2", Entry: "rpm=5"}, {Name: "b", Fingerprint: "fp-b"}})
	if n := pickDone(t, p, "", ok); n != "a" {
		t.Fatal("an edited entry was not tried at once")
	}
}

func TestMaxConcurrent(t *testing.T) {
	p, _ := newTestPool(RoundRobin, KeySpec{Name: "a", MaxConcurrent: 2}, KeySpec{Name: "b", MaxConcurrent: 2})
	var leases []Lease
	for range 4 {
		l, d := p.Acquire("", nil)
		if d != nil {
			t.Fatal(d.Detail)
		}
		leases = append(leases, l)
	}
	_, d := p.Acquire("", nil)
	if d == nil || d.Code != "all-keys-cooling" || !d.OnRelease {
		t.Fatalf("fifth: %+v", d)
	}
	leases[0].Done(ok, Spend{})
	select {
	case <-d.Wake:
	default:
		t.Error("a release did not wake waiters")
	}
	l, d := p.Acquire("", nil)
	if d != nil || l.Name != leases[0].Name {
		t.Errorf("after a release: %+v %v", d, l.Name)
	}
}

func TestRPMWindow(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a", RPM: 3})
	for i := range 3 {
		pickDone(t, p, "", ok)
		clk.advance(10 * time.Second)
		_ = i
	}
	_, d := p.Acquire("", nil)
	if d == nil || d.Until.Sub(clk.now) != 30*time.Second {
		t.Fatalf("fourth within the minute: %+v", d)
	}
	clk.advance(30 * time.Second)
	pickDone(t, p, "", ok)
}

// Status counts the last minute's requests and tokens of every key, with
// limits or without.
func TestLastMinuteOfKeysWithoutLimits(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "free"}, KeySpec{Name: "capped", RPM: 1000, TPM: 1e6})
	for range 10 {
		l, _ := p.Acquire("", nil)
		l.Done(ok, Spend{Tokens: 7})
		clk.advance(time.Second)
	}
	views, _, _ := p.View()
	for _, v := range views {
		if v.RequestsMinute != 5 || v.TokensMinute != 35 || v.RequestsToday != 5 {
			t.Errorf("%s after 5 requests of 7 tokens: %d requests, %d tokens in the last minute, %d today", v.Name, v.RequestsMinute, v.TokensMinute, v.RequestsToday)
		}
	}
	clk.advance(time.Minute)
	if views, _, _ := p.View(); views[0].RequestsMinute != 0 || views[0].TokensMinute != 0 {
		t.Errorf("a minute later: %+v", views[0])
	}
}

func TestTPMAndDailyBudgets(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a", TPM: 100})
	l, _ := p.Acquire("", nil)
	l.Done(ok, Spend{Tokens: 100})
	if _, d := p.Acquire("", nil); d == nil || d.Until.Sub(clk.now) != time.Minute {
		t.Fatalf("at tpm: %+v", d)
	}
	clk.advance(time.Minute)
	pickDone(t, p, "", ok)

	p, clk = newTestPool(RoundRobin, KeySpec{Name: "a", RPD: 2}, KeySpec{Name: "b", TPD: 50})
	pickDone(t, p, "", ok) // a
	l, _ = p.Acquire("", nil)
	l.Done(ok, Spend{Tokens: 50}) // b spent its day
	pickDone(t, p, "", ok)        // a, its second
	_, d := p.Acquire("", nil)
	midnight := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	if d == nil || !d.Until.Equal(midnight) {
		t.Fatalf("daily budgets spent: %+v", d)
	}
	clk.now = midnight
	if got := sequence(t, p, 2); got != "ab" && got != "ba" {
		t.Errorf("next day: %s", got)
	}

	// What a key spent before a restart counts toward today's budget.
	p, _ = newTestPool(RoundRobin, KeySpec{Name: "a", RPD: 3}, KeySpec{Name: "b", TPD: 50})
	if !p.SeedToday("a", Seed{Requests: 2, Tokens: 0}) || !p.SeedToday("b", Seed{Requests: 1, Tokens: 50}) || p.SeedToday("zz", Seed{Requests: 1, Tokens: 1}) {
		t.Fatal("SeedToday")
	}
	pickDone(t, p, "", ok) // a's third; b spent its tokens
	if _, d := p.Acquire("", nil); d == nil || !d.Until.Equal(midnight) {
		t.Fatalf("seeded budgets: %+v", d)
	}
}

func TestManualOverrides(t *testing.T) {
	p, clk := newTestPool(FillFirst, keys("a", "b")...)
	if !p.Disable("a", clk.now.Add(time.Hour)) || p.Disable("zz", time.Time{}) {
		t.Fatal("Disable")
	}
	if n := pickDone(t, p, "", ok); n != "b" {
		t.Fatal("disabled a served")
	}
	if v, _, _ := p.View(); v[0].State != "disabled" {
		t.Errorf("view %+v", v[0])
	}
	clk.advance(time.Hour)
	if n := pickDone(t, p, "", ok); n != "a" {
		t.Fatal("disable --for did not end")
	}
	p.Disable("a", time.Time{})
	if len(p.Disabled()) != 1 {
		t.Error("Disabled()")
	}
	p.Enable("a")
	if n := pickDone(t, p, "", ok); n != "a" {
		t.Fatal("enable")
	}
	pickDone(t, p, "", Outcome{Class: InvalidKey, Status: 401})
	p.Reset("a")
	if n := pickDone(t, p, "", ok); n != "a" {
		t.Fatal("reset did not unpark")
	}
}

func TestTriedKeysAreSkipped(t *testing.T) {
	p, _ := newTestPool(FillFirst, keys("a", "b")...)
	l, d := p.Acquire("", []string{"a"})
	if d != nil || l.Name != "b" {
		t.Fatalf("%v %+v", l.Name, d)
	}
	l.Done(ok, Spend{})
	if _, d := p.Acquire("", []string{"a", "b"}); d == nil {
		t.Fatal("every key tried, still a lease")
	}
}

// BenchmarkTake is key selection: Take and Done of a lease, with
// round-robin (the default) and least-used (which looks at every key).
func BenchmarkTake(b *testing.B) {
	for _, c := range []struct {
		strategy Strategy
		n, rpm   int
	}{{RoundRobin, 1, 0}, {RoundRobin, 10, 0}, {RoundRobin, 1000, 0}, {RoundRobin, 1000, 100000}, {FillFirst, 1000, 0},
		{Weighted, 1000, 0}, {LeastUsed, 10, 0}, {LeastUsed, 1000, 0}, {LeastUsed, 1000, 100000}} {
		name := fmt.Sprint(c.strategy, "/", c.n, "keys")
		if c.rpm > 0 {
			name += fmt.Sprint("/rpm", c.rpm)
		}
		b.Run(name, func(b *testing.B) {
			specs := make([]KeySpec, c.n)
			for i := range specs {
				specs[i] = KeySpec{Name: fmt.Sprint("k", i), Fingerprint: fmt.Sprint(i), TPM: 1 << 30, RPM: c.rpm}
			}
			p := NewPool("openai", realClock{})
			p.Update(Policy{Strategy: c.strategy}, specs)
			b.ReportAllocs()
			for b.Loop() {
				l, _ := p.Take(Ask{Model: "gpt-4o"})
				l.Done(ok, Spend{Tokens: 10})
			}
		})
	}
}

// The tpm window is a fixed ring of seconds: many requests in a second
// share a bucket, and buckets leave a minute after their second began.
// Weighted picks step along a precomputed cycle: shares hold, a key not
// usable gives its turns to the others in proportion, and weights too
// large for a cycle fall back to the scan.

// A renamed key keeps what the pool knows of it (here: parked, disabled
// by hand, a conversation on it) under its new name, through the next
// Update with the keyfile's new name; a rename onto a name in use is
// refused.
func TestRenameKeepsTheKeysState(t *testing.T) {
	p, _ := newTestPool(RoundRobin, keys("a", "b")...)
	l, den := p.Take(Ask{Session: "conv-1"})
	if den != nil {
		t.Fatal(den.Detail)
	}
	l.Done(ok, Spend{})
	conv := l.Name
	p.Checked("a", Outcome{Class: InvalidKey, Status: 401, Reason: "401 invalid key"})
	p.Disable("b", time.Time{})
	if p.Rename("a", "b") || p.Rename("nosuch", "c") {
		t.Fatal("a rename onto a key's name, or of no key, was done")
	}
	if !p.Rename("a", "work") || !p.Rename("b", "home") {
		t.Fatal("rename refused")
	}
	p.Update(Policy{Strategy: RoundRobin, ProbeInterval: time.Minute}, []KeySpec{{Name: "work", Fingerprint: "fp-a"}, {Name: "home", Fingerprint: "fp-b"}})
	v, _, _ := p.View()
	if v[0].Name != "work" || v[0].State != Parked || v[1].Name != "home" || v[1].State != Disabled {
		t.Errorf("after the renames: %+v", v)
	}
	renamed := map[string]string{"a": "work", "b": "home"}[conv]
	p.Enable("work")
	p.Enable("home")
	if l, den := p.Take(Ask{Session: "conv-1"}); den != nil || l.Name != renamed || l.Affinity != Hit {
		t.Errorf("the conversation on %s went to %s (%v), want %s", conv, l.Name, l.Affinity, renamed)
	}
}
