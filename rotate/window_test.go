// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"
)

func TestMinuteWindowRing(t *testing.T) {
	var w minuteWindow
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	for s := range 200 { // more seconds than the ring has slots
		now := start.Add(time.Duration(s) * time.Second)
		for range 5 {
			w.request(now.Add(300 * time.Millisecond))
			w.spend(now.Add(300*time.Millisecond), 2)
		}
		n := min(s+1, 60)
		if w.tokens != 10*n || w.reqs != 5*n || w.len > 60 {
			t.Fatalf("second %d: %d tokens, %d requests (want %d, %d), %d buckets", s, w.tokens, w.reqs, 10*n, 5*n, w.len)
		}
	}
	last := start.Add(199 * time.Second)
	if got := w.frees(w.reqs, w.reqs, bucketReqs); !got.Equal(last.Add(-59 * time.Second).Add(time.Minute)) {
		t.Errorf("at its request limit the window frees at %v", got)
	}
	w.prune(last.Add(time.Minute))
	if w.tokens != 0 || w.reqs != 0 || w.len != 0 {
		t.Errorf("a minute after the last: %d tokens, %d requests in %d buckets", w.tokens, w.reqs, w.len)
	}
}

// A window over its limit (the limit lowered by a reload) frees when
// enough seconds have left to bring it under, not when the oldest has.
func TestMinuteWindowFreesUnderTheLimit(t *testing.T) {
	var w minuteWindow
	for s := range 4 { // 3 requests a second for 4 seconds, from t0
		for range 3 {
			w.request(t0.Add(time.Duration(s) * time.Second))
		}
	}
	for _, c := range []struct {
		limit int
		want  time.Duration // after t0
	}{{12, 60 * time.Second}, {10, 60 * time.Second}, {9, 61 * time.Second}, {4, 62 * time.Second}, {3, 63 * time.Second}, {1, 63 * time.Second}} {
		if got := w.frees(c.limit, w.reqs, bucketReqs); got.Sub(t0) != c.want {
			t.Errorf("12 requests, limit %d: frees after %v, want %v", c.limit, got.Sub(t0), c.want)
		}
	}
}

// A key's windows are the same small ring whatever its limits: keys at
// the largest rpm cost no more memory than keys without limits, and still
// count every request.
func TestWindowSizeDoesNotDependOnLimits(t *testing.T) {
	specs := make([]KeySpec, 100)
	for i := range specs {
		specs[i] = KeySpec{Name: fmt.Sprint("k", i), Fingerprint: fmt.Sprint(i), RPM: 100000, TPM: 1e12, MaxConcurrent: 100000}
	}
	clk := &fakeClock{now: t0}
	p := NewPool("openai", clk)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p.Update(Policy{Strategy: RoundRobin, Groups: map[string]Limits{"acme": {RPM: 100000}}}, specs)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 100*8<<10 {
		t.Errorf("100 keys at rpm 100000 took %d KiB", grew>>10)
	}
	for range 1000 {
		pickDone(t, p, "", ok)
		clk.advance(10 * time.Millisecond)
	}
	views, _, _ := p.View()
	if n := views[0].RequestsMinute; n != 10 || views[0].State != Ready {
		t.Errorf("1000 requests in 10 s over 100 keys: the first key %+v", views[0])
	}
}

// Counts held at the largest int do not wrap, and leave the window as
// their seconds do.
func TestMinuteWindowSaturates(t *testing.T) {
	var w minuteWindow
	w.spend(t0, math.MaxInt)
	w.spend(t0.Add(time.Second), math.MaxInt)
	w.spend(t0.Add(2*time.Second), 5)
	if w.tokens != math.MaxInt {
		t.Fatalf("sum %d", w.tokens)
	}
	w.prune(t0.Add(60 * time.Second))
	if w.tokens != math.MaxInt || w.len != 2 {
		t.Fatalf("after the first second left: %d in %d buckets", w.tokens, w.len)
	}
	w.prune(t0.Add(61 * time.Second))
	if w.tokens != 5 {
		t.Errorf("after the absurd seconds left: %d", w.tokens)
	}
}

// An answer's absurd token count (fewer than none, or near the largest
// int) is held to what one answer can count: the key's last minute and
// today stay sane, and counts seeded from usage saturate.
func TestAbsurdTokenCountsAreBounded(t *testing.T) {
	p, _ := newTestPool(RoundRobin, KeySpec{Name: "a", TPM: 1e12, TPD: 1e12})
	for _, n := range []int{-7, math.MaxInt, math.MaxInt, 5} {
		l, d := p.Acquire("", nil)
		if d != nil {
			t.Fatalf("after absurd answers: %s", d.Detail)
		}
		l.Done(ok, Spend{Tokens: n})
	}
	views, _, _ := p.View()
	if v := views[0]; v.TokensMinute != 2*maxAnswerTokens+5 || v.TokensToday != 2*maxAnswerTokens+5 || v.RequestsMinute != 4 {
		t.Errorf("tokens -7, max, max, 5: %d in the last minute, %d today", v.TokensMinute, v.TokensToday)
	}
	p.SeedToday("a", Seed{Requests: -3, Tokens: math.MaxInt})
	views, _, _ = p.View()
	if v := views[0]; v.TokensToday != math.MaxInt || v.RequestsToday != 4 || v.State != Limited {
		t.Errorf("seeded with -3 requests and the largest int of tokens: %+v", v)
	}
}
