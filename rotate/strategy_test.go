// SPDX-License-Identifier: MIT

package rotate

import (
	"strings"
	"testing"
	"time"
)

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
	l.Done(ok, Spend{Tokens: 1000}) // a has spent 1000 tokens this minute
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
