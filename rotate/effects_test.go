// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Every class that SetsAside says cools or parks a key does so in Done.
func TestSetsAsideIsWhatDoneDoes(t *testing.T) {
	for _, c := range Classes() {
		clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
		p := NewPool("openai", clk)
		p.Update(Policy{Strategy: RoundRobin}, []KeySpec{{Name: "a"}})
		l, den := p.Acquire("", nil)
		if den != nil {
			t.Fatal(den.Detail)
		}
		l.Done(Outcome{Class: c, Reason: "x"}, Spend{})
		views, _, _ := p.View()
		if got, want := views[0].State, c.SetsAside(); got != want {
			t.Errorf("%s: key is %s, SetsAside says %s", c, got, want)
		}
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
			l.Done(ok, Spend{})
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
	probe.Done(Outcome{Class: InvalidKey, Status: 401, Reason: "401 invalid key"}, Spend{})
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
	probe.Done(Outcome{Class: Overloaded, Status: 529}, Spend{})
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

// Judge sets a key aside while its lease goes on, as Done would, and
// only for the model the refusal was about.
func TestJudgeWhileTheLeaseGoesOn(t *testing.T) {
	p, _ := newTestPool(RoundRobin, keys("a", "b")...)
	l, den := p.Take(Ask{})
	if den != nil {
		t.Fatal(den.Detail)
	}
	l.Judge(Outcome{Class: RateLimited, Status: 429, Wait: 30 * time.Second}, "gpt-5")
	for range 4 {
		if n := pickDone(t, p, "gpt-5", ok); n == l.Name {
			t.Fatalf("%s served gpt-5 while cooling for it", n)
		}
	}
	views, _, _ := p.View()
	for _, v := range views {
		if v.Name == l.Name && v.InFlight != 1 {
			t.Errorf("the lease ended: %+v", v)
		}
	}
	l.Done(Outcome{Class: Success}, Spend{Tokens: 10})
	if got := sequence(t, p, 2); !strings.Contains(got, l.Name) {
		t.Errorf("%s does not serve another model: %s", l.Name, got)
	}
}

// A check made outside the proxy acts as the same answer would: a 401
// parks the key, a spent quota parks its group, a rate limit cools it, a
// success brings a parked key back; a server error or a transport
// failure changes nothing.
func TestCheckedActsAsTheAnswer(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a", Group: "org"}, KeySpec{Name: "b", Group: "org"}, KeySpec{Name: "c"})
	state := func(name string) KeyState {
		v, _, _ := p.View()
		for _, k := range v {
			if k.Name == name {
				return k.State
			}
		}
		return ""
	}
	for _, c := range []Class{ServerError, Transport, Overloaded, CallerFault} {
		p.Checked("c", Outcome{Class: c, Reason: "x"})
		if state("c") != Ready {
			t.Errorf("a check that got %s set c %s", c, state("c"))
		}
	}
	if !p.Checked("c", Outcome{Class: InvalidKey, Status: 401, Reason: "401 invalid key"}) || state("c") != Parked {
		t.Errorf("a 401 left c %s", state("c"))
	}
	p.Checked("c", ok)
	if state("c") != Ready {
		t.Errorf("a valid check left the parked c %s", state("c"))
	}
	p.Checked("a", Outcome{Class: Quota, Status: 429, Reason: "quota"})
	if state("a") != Parked || state("b") != Parked {
		t.Errorf("a spent quota: a %s, b %s; want both parked (one organisation)", state("a"), state("b"))
	}
	p.Checked("c", Outcome{Class: RateLimited, Status: 429, Wait: 20 * time.Second})
	if v, _, _ := p.View(); v[2].State != Cooling || v[2].Until.Sub(clk.now) != 20*time.Second {
		t.Errorf("a rate limit: %+v", v[2])
	}
	if p.Checked("nosuch", ok) {
		t.Error("Checked found a key that is not there")
	}
}

func TestParseClassReadsEveryName(t *testing.T) {
	for _, c := range Classes() {
		if got, ok := ParseClass(c.String()); !ok || got != c {
			t.Errorf("ParseClass(%q) = %v, %v", c.String(), got, ok)
		}
	}
	if _, ok := ParseClass("nonsense"); ok {
		t.Error("ParseClass read a name that is no class")
	}
}
