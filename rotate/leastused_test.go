// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// bruteLeastUsed is least-used by scanning, as the heap must agree. It
// reads the windows without pruning them.
func bruteLeastUsed(p *Pool, now time.Time, model string, tried []string) string {
	var best *keyState
	bestSum := 0
	p.q = query{now: now, model: model, tried: tried}
	defer func() { p.q = query{} }()
	for _, k := range p.keys {
		if !p.usable(k) {
			continue
		}
		sum, w := 0, &k.minute
		for j := range w.len {
			if b := w.b[(w.head+j)%slots]; now.Sub(time.Unix(b.sec, 0)) < window {
				sum += b.tokens
			}
		}
		if best == nil || sum < bestSum || (sum == bestSum && (k.inFlight < best.inFlight || (k.inFlight == best.inFlight && k.idx < best.idx))) {
			best, bestSum = k, sum
		}
	}
	if best == nil {
		return ""
	}
	return best.spec.Name
}

// The heap picks what a scan of every key would, through requests that
// start, end and hold, windows that expire, cooldowns, tried keys, limits
// and reloads.
func TestLeastUsedHeapAgreesWithScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specs := make([]KeySpec, 40)
	for i := range specs {
		specs[i] = KeySpec{Name: fmt.Sprint("k", i), Fingerprint: fmt.Sprint(i)}
		if i%7 == 0 {
			specs[i].MaxConcurrent = 1
		}
		if i%5 == 0 {
			specs[i].TPM = 3000 // limitFrees prunes these windows too
		}
	}
	p, clk := newTestPool(LeastUsed, specs...)
	var held []Lease
	heap := func() *leastUsed { return p.picker.(*leastUsed) }
	check := func(step int, what string) {
		for i := 1; i < len(heap().used); i++ {
			if lessUsed(heap().used[i], heap().used[(i-1)/2]) {
				t.Fatalf("step %d after %s: heap order broken at %d", step, what, i)
			}
		}
		for i, k := range heap().used {
			if k.hidx != i {
				t.Fatalf("step %d after %s: hidx", step, what)
			}
		}
		if len(heap().used) != len(p.keys) {
			t.Fatalf("step %d after %s: %d in heap, %d keys", step, what, len(heap().used), len(p.keys))
		}
	}
	last := ""
	for step := range 20000 {
		check(step, last)
		switch r := rng.IntN(100); {
		case r < 10:
			last = "advance"
			clk.advance(time.Duration(rng.IntN(5000)) * time.Millisecond)
		case r < 15 && len(held) > 0:
			i := rng.IntN(len(held))
			last = "done held"
			held[i].Done(ok, Spend{Tokens: rng.IntN(500)})
			held = append(held[:i], held[i+1:]...)
		case r < 13:
			last = "view"
			p.View() // status reads, and prunes, every window
		case r < 16:
			last = "update"
			// A reload that drops one key and brings another back.
			n := rng.IntN(len(specs))
			sub := append(append([]KeySpec(nil), specs[:n]...), specs[n+1:]...)
			p.Update(Policy{Strategy: LeastUsed}, sub)
			if rng.IntN(2) == 0 {
				p.Update(Policy{Strategy: LeastUsed}, specs)
			}
		default:
			var tried []string
			if rng.IntN(4) == 0 {
				tried = []string{fmt.Sprint("k", rng.IntN(len(specs)))}
			}
			last = "acquire"
			// As Acquire does first; then the scan's own prunes (of keys
			// with a tpm) change nothing behind the heap's back.
			heap().expire(clk.now)
			want := bruteLeastUsed(p, clk.now, "m", tried)
			l, d := p.Acquire("m", tried)
			got := l.Name
			if d != nil {
				got = ""
			}
			if got != want {
				for _, n := range []string{got, want} {
					if k := p.byName[n]; k != nil {
						t.Logf("%s: sum %d inFlight %d idx %d hidx %d usable %v", n, k.minute.tokens, k.inFlight, k.idx, k.hidx, usableFor(p, k, clk.now, "m", tried))
					}
				}
				t.Fatalf("step %d: heap picked %q, a scan %q (tried %v)", step, got, want, tried)
			}
			if d != nil {
				continue
			}
			switch rng.IntN(10) {
			case 0:
				last = "acquire+hold"
				held = append(held, l)
			case 1:
				last = "acquire+429"
				l.Done(Outcome{Class: RateLimited, Status: 429, Wait: time.Duration(1+rng.IntN(3)) * time.Second}, Spend{})
			case 2:
				last = "acquire+cancel"
				l.Cancel()
			default:
				last = "acquire+done"
				l.Done(ok, Spend{Tokens: rng.IntN(1000)})
			}
		}
	}
}

func usableFor(p *Pool, k *keyState, now time.Time, model string, tried []string) bool {
	p.q = query{now: now, model: model, tried: tried}
	defer func() { p.q = query{} }()
	return p.usable(k)
}
