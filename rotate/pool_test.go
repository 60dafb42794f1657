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
	l.Done(o, 0)
	return l.Name
}

var ok = Outcome{Class: Success, Status: 200}

func sequence(t *testing.T, p *Pool, n int) string {
	t.Helper()
	var s []string
	for range n {
		s = append(s, pickDone(t, p, "m", ok))
	}
	return strings.Join(s, "")
}

func TestStrategies(t *testing.T) {
	p, _ := newTestPool(RoundRobin, keys("a", "b", "c")...)
	if got := sequence(t, p, 6); got != "abcabc" {
		t.Errorf("round-robin: %s", got)
	}
	p, _ = newTestPool(FillFirst, keys("a", "b")...)
	if got := sequence(t, p, 3); got != "aaa" {
		t.Errorf("fill-first: %s", got)
	}
	p, _ = newTestPool(Weighted, KeySpec{Name: "a", Weight: 3}, KeySpec{Name: "b", Weight: 1})
	if got := sequence(t, p, 8); strings.Count(got, "a") != 6 || strings.Count(got, "b") != 2 {
		t.Errorf("weighted 3:1: %s", got)
	}

	p, _ = newTestPool(LeastUsed, keys("a", "b")...)
	l, _ := p.Acquire("m", nil)
	l.Done(ok, 1000) // a has spent 1000 tokens this minute
	for range 3 {
		if n := pickDone(t, p, "m", ok); n != "b" {
			t.Errorf("least-used picked %s", n)
		}
	}
}

func TestFillFirstFallsThroughWhileTheFirstCools(t *testing.T) {
	p, clk := newTestPool(FillFirst, keys("free", "paid")...)
	pickDone(t, p, "m", Outcome{Class: RateLimited, Status: 429, Wait: 10 * time.Second})
	if got := sequence(t, p, 2); got != "paidpaid" {
		t.Errorf("while free cools: %s", got)
	}
	clk.advance(10 * time.Second)
	if got := sequence(t, p, 1); got != "free" {
		t.Errorf("after: %s", got)
	}
}

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

func TestRateLimitCoolsKeyForModel(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b")...)
	pickDone(t, p, "gpt", Outcome{Class: RateLimited, Status: 429, Wait: 30 * time.Second, WaitSource: "retry-after"})
	for range 10 {
		if n := pickDone(t, p, "gpt", ok); n != "b" {
			t.Fatalf("a served while cooling")
		}
	}
	// Quotas are often per model: a may still serve another.
	if got := sequence(t, p, 2); !strings.Contains(got, "a") {
		t.Errorf("a does not serve another model while cooling for gpt: %s", got)
	}
	v, _, _ := p.View()
	if v[0].State != "cooling" || v[0].Until.Sub(clk.now) != 30*time.Second || !strings.Contains(v[0].Reason, "retry-after") {
		t.Errorf("view of a: %+v", v[0])
	}
	clk.advance(30 * time.Second)
	if got := fmt.Sprint(pickDone(t, p, "gpt", ok), pickDone(t, p, "gpt", ok)); !strings.Contains(got, "a") {
		t.Errorf("a did not come back: %s", got)
	}
}

func TestRateLimitWithoutWaitBacksOff(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a")...)
	var waits []time.Duration
	for range 8 {
		pickDone(t, p, "", Outcome{Class: RateLimited, Status: 429})
		_, d := p.Acquire("", nil)
		waits = append(waits, d.Until.Sub(clk.now))
		clk.now = d.Until
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Fatalf("backoff %v, want %v seconds", waits, want)
		}
	}
	pickDone(t, p, "", ok)
	pickDone(t, p, "", Outcome{Class: RateLimited, Status: 429})
	if _, d := p.Acquire("", nil); d.Until.Sub(clk.now) != time.Second {
		t.Errorf("a success did not reset the backoff: %v", d.Until.Sub(clk.now))
	}
}

func TestAllCoolingSaysWhen(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b")...)
	pickDone(t, p, "m", Outcome{Class: RateLimited, Status: 429, Wait: 60 * time.Second})
	clk.advance(5 * time.Second)
	pickDone(t, p, "m", Outcome{Class: RateLimited, Status: 429, Wait: 60 * time.Second})
	_, d := p.Acquire("m", nil)
	if d == nil || d.Code != "all-keys-cooling" || d.Until.Sub(clk.now) != 55*time.Second {
		t.Fatalf("denial %+v", d)
	}
	if !strings.Contains(d.Detail, "openai/a cooling 55s") || !strings.Contains(d.Detail, "openai/b cooling 1m0s") {
		t.Errorf("detail: %s", d.Detail)
	}
}

func TestInvalidKeyIsParkedAndProbed(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b")...)
	pickDone(t, p, "", Outcome{Class: InvalidKey, Status: 401, Reason: "401 invalid key"})
	for range 5 {
		if n := pickDone(t, p, "", ok); n != "b" {
			t.Fatal("parked a served")
		}
	}
	v, _, _ := p.View()
	if v[0].State != "parked" || v[0].Reason != "401 invalid key" || v[0].Until.Sub(clk.now) != time.Minute || len(v[0].Failures) != 1 {
		t.Fatalf("view: %+v", v[0])
	}

	// Due: one request probes it, and only one at a time.
	clk.advance(time.Minute)
	var probe Lease
	for range 2 {
		l, _ := p.Acquire("", nil)
		if l.Name == "a" {
			probe = l
		} else {
			l.Done(ok, 0)
		}
	}
	if probe.Name != "a" {
		t.Fatal("a was not probed when due")
	}
	for range 3 {
		if n := pickDone(t, p, "", ok); n != "b" {
			t.Fatal("a probed twice at once")
		}
	}
	probe.Done(Outcome{Class: InvalidKey, Status: 401, Reason: "401 invalid key"}, 0)
	v, _, _ = p.View()
	if v[0].Until.Sub(clk.now) != 2*time.Minute {
		t.Errorf("second probe in %v, want 2m", v[0].Until.Sub(clk.now))
	}
	clk.advance(2 * time.Minute)
	for i := 0; i < 2; i++ {
		pickDone(t, p, "", ok)
	}
	if v, _, _ = p.View(); v[0].State != "ready" {
		t.Errorf("a successful probe did not bring a back: %+v", v[0])
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

func TestDailyQuotaReturnsAfterReset(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a")...)
	reset := t0.Add(3 * time.Hour)
	pickDone(t, p, "", Outcome{Class: Quota, Status: 429, Until: reset})
	clk.advance(2 * time.Hour) // probes are due, but the reset is not
	_, d := p.Acquire("", nil)
	if d == nil || !d.Until.Equal(reset) {
		t.Fatalf("denial %+v", d)
	}
	clk.now = reset
	pickDone(t, p, "", ok)
}

func TestCallerFaultBlamesNobody(t *testing.T) {
	p, _ := newTestPool(FillFirst, keys("a", "b")...)
	for range 10 {
		pickDone(t, p, "", Outcome{Class: CallerFault, Status: 400})
	}
	v, circ, _ := p.View()
	if v[0].State != "ready" || len(v[0].Failures) != 0 || circ != "closed" {
		t.Errorf("a 400 marked something: %+v %s", v[0], circ)
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
	leases[0].Done(ok, 0)
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

func TestTPMAndDailyBudgets(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a", TPM: 100})
	l, _ := p.Acquire("", nil)
	l.Done(ok, 100)
	if _, d := p.Acquire("", nil); d == nil || d.Until.Sub(clk.now) != time.Minute {
		t.Fatalf("at tpm: %+v", d)
	}
	clk.advance(time.Minute)
	pickDone(t, p, "", ok)

	p, clk = newTestPool(RoundRobin, KeySpec{Name: "a", RPD: 2}, KeySpec{Name: "b", TPD: 50})
	pickDone(t, p, "", ok) // a
	l, _ = p.Acquire("", nil)
	l.Done(ok, 50)         // b spent its day
	pickDone(t, p, "", ok) // a, its second
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
	if !p.SeedToday("a", 2, 0) || !p.SeedToday("b", 1, 50) || p.SeedToday("zz", 1, 1) {
		t.Fatal("SeedToday")
	}
	pickDone(t, p, "", ok) // a's third; b spent its tokens
	if _, d := p.Acquire("", nil); d == nil || !d.Until.Equal(midnight) {
		t.Fatalf("seeded budgets: %+v", d)
	}
}

func TestCircuitOpensOnOverloadWithoutBlamingKeys(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b")...)
	pickDone(t, p, "", Outcome{Class: Overloaded, Status: 529, Reason: "529 provider overloaded"})
	_, d := p.Acquire("", nil)
	if d == nil || d.Code != "provider-unavailable" || d.Until.Sub(clk.now) != time.Second {
		t.Fatalf("after an overload: %+v", d)
	}
	v, circ, _ := p.View()
	if v[0].State != "ready" || v[1].State != "ready" || !strings.HasPrefix(circ, "open") {
		t.Errorf("view %+v %s", v, circ)
	}
	// Half-open: one probe at a time.
	clk.advance(time.Second)
	probe, d := p.Acquire("", nil)
	if d != nil {
		t.Fatal(d.Detail)
	}
	if _, d := p.Acquire("", nil); d == nil || !d.OnRelease {
		t.Fatalf("a second request during the probe: %+v", d)
	}
	probe.Done(Outcome{Class: Overloaded, Status: 529}, 0)
	if _, d := p.Acquire("", nil); d == nil || d.Until.Sub(clk.now) != 2*time.Second {
		t.Fatalf("a failed probe should double the backoff: %+v", d)
	}
	clk.advance(2 * time.Second)
	pickDone(t, p, "", ok)
	if _, circ, _ := p.View(); circ != "closed" {
		t.Errorf("a good probe did not close the circuit: %s", circ)
	}
}

func TestTransportRunOpensCircuit(t *testing.T) {
	p, _ := newTestPool(RoundRobin, keys("a", "b")...)
	for range 5 {
		pickDone(t, p, "", TransportOutcome("connection refused"))
	}
	v, circ, _ := p.View()
	if !strings.HasPrefix(circ, "open") || v[0].State != "ready" || v[1].State != "ready" {
		t.Errorf("after 5 transport failures across keys: %s %+v", circ, v)
	}
}

func TestKeyFailingAloneIsCooled(t *testing.T) {
	p, _ := newTestPool(RoundRobin, keys("a", "b")...)
	for range 3 {
		pickDone(t, p, "", Outcome{Class: ServerError, Status: 500, Reason: "500 server error"}) // a
		pickDone(t, p, "", ok)                                                                   // b
	}
	v, circ, _ := p.View()
	if v[0].State != "cooling" || v[1].State != "ready" || circ != "closed" {
		t.Errorf("a failing alone: %+v %s", v, circ)
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
	l.Done(ok, 0)
	if _, d := p.Acquire("", []string{"a", "b"}); d == nil {
		t.Fatal("every key tried, still a lease")
	}
}

func TestPreemptiveCooling(t *testing.T) {
	p, clk := newTestPool(FillFirst, keys("a", "b")...)
	pickDone(t, p, "m", Outcome{Class: Success, Status: 200, Wait: 2 * time.Second, Reason: "remaining 0"})
	if n := pickDone(t, p, "m", ok); n != "b" {
		t.Fatal("a served with nothing remaining")
	}
	clk.advance(2 * time.Second)
	if n := pickDone(t, p, "m", ok); n != "a" {
		t.Fatal("a did not come back after its reset")
	}
}

// BenchmarkAcquire is key selection: Acquire and Done of a lease, with
// round-robin (the default) and least-used (which looks at every key).
func BenchmarkAcquire(b *testing.B) {
	for _, c := range []struct {
		strategy Strategy
		n        int
	}{{RoundRobin, 1}, {RoundRobin, 10}, {RoundRobin, 1000}, {FillFirst, 1000}, {Weighted, 1000}, {LeastUsed, 10}, {LeastUsed, 1000}} {
		b.Run(fmt.Sprint(c.strategy, "/", c.n, "keys"), func(b *testing.B) {
			specs := make([]KeySpec, c.n)
			for i := range specs {
				specs[i] = KeySpec{Name: fmt.Sprint("k", i), Fingerprint: fmt.Sprint(i), TPM: 1 << 30}
			}
			p := NewPool("openai", realClock{})
			p.Update(Policy{Strategy: c.strategy}, specs)
			b.ReportAllocs()
			for b.Loop() {
				l, _ := p.Acquire("gpt-4o", nil)
				l.Done(ok, 10)
			}
		})
	}
}

// The tpm window is a fixed ring of seconds: many requests in a second
// share a bucket, and buckets leave a minute after their second began.
func TestTokenWindowRing(t *testing.T) {
	var w tokWindow
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	for s := range 200 { // more seconds than the ring has slots
		now := start.Add(time.Duration(s) * time.Second)
		for range 5 {
			w.add(now.Add(300*time.Millisecond), 2)
		}
		if want := 10 * min(s+1, 60); w.sum != want || w.len > 60 {
			t.Fatalf("second %d: sum %d (want %d), %d buckets", s, w.sum, want, w.len)
		}
	}
	last := start.Add(199 * time.Second)
	if !w.oldest().Equal(last.Add(-59 * time.Second)) {
		t.Errorf("oldest %v", w.oldest())
	}
	w.prune(last.Add(time.Minute))
	if w.sum != 0 || w.len != 0 {
		t.Errorf("a minute after the last: %d in %d buckets", w.sum, w.len)
	}
}

// Weighted picks step along a precomputed cycle: shares hold, a key not
// usable gives its turns to the others in proportion, and weights too
// large for a cycle fall back to the scan.
func TestWeightedSchedule(t *testing.T) {
	p, _ := newTestPool(Weighted, KeySpec{Name: "a", Weight: 3}, KeySpec{Name: "b", Weight: 1}, KeySpec{Name: "c", Weight: 1})
	if got := sequence(t, p, 10); got != "abacaabaca" {
		t.Errorf("3:1:1: %s", got)
	}
	p.Disable("b", time.Time{})
	if got := sequence(t, p, 8); strings.Count(got, "a") != 6 || strings.Count(got, "c") != 2 {
		t.Errorf("3:1 with b disabled: %s", got)
	}
	p.Disable("a", time.Time{})
	p.Disable("c", time.Time{})
	if _, d := p.Acquire("", nil); d == nil {
		t.Error("a pick with every key disabled")
	}

	big, _ := newTestPool(Weighted, KeySpec{Name: "a", Weight: maxSchedule}, KeySpec{Name: "b", Weight: maxSchedule})
	if big.picker.(*weighted).schedule != nil {
		t.Fatal("a schedule longer than maxSchedule")
	}
	if got := sequence(t, big, 4); strings.Count(got, "a") != 2 {
		t.Errorf("1:1 by scanning: %s", got)
	}
}
