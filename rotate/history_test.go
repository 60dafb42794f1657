// SPDX-License-Identifier: MIT

package rotate

import (
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// keyHistory is the named key's last hour.
func keyHistory(t *testing.T, p *Pool, name string) [HistoryMinutes]Minute {
	t.Helper()
	keys, _, _ := p.History()
	for _, k := range keys {
		if k.Name == name {
			return k.Minutes
		}
	}
	t.Fatalf("no history of %s", name)
	return [HistoryMinutes]Minute{}
}

// A burst two minutes ago shows in its minute, with its tokens, cost and
// failures, and the minutes since are empty; an hour later it is gone.
func TestHistoryCountsByMinute(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a"})
	for range 7 {
		l, _ := p.Acquire("", nil)
		l.Done(ok, Spend{Tokens: 100, Cost: 2_000})
	}
	pickDone(t, p, "", Outcome{Class: ServerError, Status: 500})
	pickDone(t, p, "", Outcome{Class: CallerFault, Status: 400})
	clk.advance(2 * time.Minute)
	h := keyHistory(t, p, "a")
	burst := h[HistoryMinutes-3]
	if burst.Requests != 9 || burst.Tokens != 700 || burst.Cost != 14_000 || burst.Failures[FailUpstream] != 1 || burst.Failures[FailRateLimited] != 0 {
		t.Errorf("the burst's minute: %+v", burst)
	}
	for _, m := range h[HistoryMinutes-2:] {
		if m != (Minute{}) {
			t.Errorf("a minute since the burst: %+v", m)
		}
	}
	clk.advance(57 * time.Minute)
	if h := keyHistory(t, p, "a"); h[0].Requests != 9 {
		t.Errorf("59 minutes later, the oldest minute: %+v", h[0])
	}
	clk.advance(time.Minute)
	for i, m := range keyHistory(t, p, "a") {
		if m != (Minute{}) {
			t.Errorf("an hour later, minute %d: %+v", i, m)
		}
	}
}

// The minutes a key spent cooling or parked are marked, including those
// in which nothing happened to it, and not those after it came back.
func TestHistoryMarksCoolingAndParked(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a"}, KeySpec{Name: "b"})
	clk.now = clk.now.Add(30 * time.Second) // mid-minute
	pickDone(t, p, "", Outcome{Class: RateLimited, Status: 429, Wait: 150 * time.Second})
	clk.advance(5 * time.Minute)
	pickDone(t, p, "", Outcome{Class: InvalidKey, Status: 401}) // b parks
	clk.advance(10 * time.Minute)
	h := keyHistory(t, p, "a")
	cooled := 0
	for _, m := range h {
		if m.Cooling {
			cooled++
		}
	}
	// From hh:00:30 for 150 s: minutes 0, 1 and 2.
	if cooled != 3 || !h[HistoryMinutes-16].Cooling || !h[HistoryMinutes-14].Cooling || h[HistoryMinutes-13].Cooling {
		t.Errorf("a cooled 150 s from mid-minute: %d minutes marked", cooled)
	}
	hb := keyHistory(t, p, "b")
	if !hb[HistoryMinutes-11].Parked || !hb[HistoryMinutes-1].Parked || hb[HistoryMinutes-12].Parked {
		t.Errorf("b parked 10 minutes ago and still: %+v", hb[HistoryMinutes-12:])
	}
	p.Enable("b")
	clk.advance(2 * time.Minute)
	hb = keyHistory(t, p, "b")
	if !hb[HistoryMinutes-3].Parked || hb[HistoryMinutes-2].Parked || hb[HistoryMinutes-1].Parked {
		t.Errorf("b enabled two minutes ago: %+v", hb[HistoryMinutes-4:])
	}
}

// A refusal counts against the key it concerned, or the provider.
func TestHistoryCountsRefusals(t *testing.T) {
	p, _ := newTestPool(RoundRobin, KeySpec{Name: "a"})
	p.Refused("a")
	p.Refused("")
	p.Refused("gone")
	keys, prov, _ := p.History()
	if keys[0].Minutes[HistoryMinutes-1].Refused != 1 || prov[HistoryMinutes-1].Refused != 2 {
		t.Errorf("refusals: key %+v, provider %+v", keys[0].Minutes[HistoryMinutes-1], prov[HistoryMinutes-1])
	}
}

// A key's history is under 1 KiB, whatever it counts, and counting it
// allocates nothing on the request path.
func TestHistoryIsSmallAndFree(t *testing.T) {
	if n := unsafe.Sizeof(history{}); n >= 1024 {
		t.Errorf("a key's history takes %d bytes", n)
	}
	p, clk := newTestPool(RoundRobin, keys("a", "b")...)
	allocs := testing.AllocsPerRun(1000, func() {
		l, _ := p.Take(Ask{Model: "m"})
		l.Done(ok, Spend{Tokens: 10, Cost: 10})
		clk.advance(7 * time.Second)
	})
	if allocs != 0 {
		t.Errorf("a request allocates %v times", allocs)
	}
}

// A thousand keys with an hour of history each hold no more memory
// than when they were new: the ring does not grow.
func TestHistoryOfAThousandKeysStaysPut(t *testing.T) {
	var specs []KeySpec
	for i := range 1000 {
		specs = append(specs, KeySpec{Name: string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('0'+i/676))})
	}
	p, clk := newTestPool(LeastUsed, specs...)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	busy := func() {
		for range 3000 {
			l, d := p.Acquire("", nil)
			if d != nil {
				t.Fatal(d.Detail)
			}
			l.Done(ok, Spend{Tokens: 50, Cost: 1000})
			clk.advance(2 * time.Second)
		}
	}
	busy()
	before := heap()
	busy() // another 100 minutes
	if after := heap(); after > before+64<<10 {
		t.Errorf("the pool grew from %d to %d bytes over another 100 minutes", before, after)
	}
	runtime.KeepAlive(p)
}

// The share of its limits a key's last answer said is left shows until
// the reset it gave.
func TestViewShowsWhatIsLeft(t *testing.T) {
	p, clk := newTestPool(RoundRobin, KeySpec{Name: "a"})
	pickDone(t, p, "", Outcome{Class: Success, Status: 200, Left: 0.42, LeftFor: time.Minute})
	if v, _, _ := p.View(); v[0].Left != 0.42 || !v[0].LeftUntil.Equal(clk.now.Add(time.Minute)) {
		t.Errorf("after an answer with 42%% left: %+v", v[0])
	}
	clk.advance(time.Minute)
	if v, _, _ := p.View(); !v[0].LeftUntil.IsZero() {
		t.Errorf("after its reset: %+v", v[0])
	}
}
