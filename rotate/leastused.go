// SPDX-License-Identifier: MIT

package rotate

import (
	"slices"
	"time"
)

// The least-used strategy picks the usable key with the fewest tokens in
// the last minute (then the fewest requests in flight, then keyfile
// order). Scanning every key for that costs tens of microseconds with a
// thousand keys, so the keys are kept in a min-heap on that order. A key's
// place changes when a request starts or ends on it, and when a second of
// its token window expires: every bucket that takes tokens is queued, in
// time order, and the expired ones are applied before each pick.
type leastUsed struct {
	used     []*keyState
	expiries []expiry
	expHead  int
	scratch  []*keyState
}

type expiry struct {
	k   *keyState
	sec int64 // the bucket's second: it leaves the window a minute later
}

// lessUsed orders keys for least-used.
func lessUsed(a, b *keyState) bool {
	if a.minute.tokens != b.minute.tokens {
		return a.minute.tokens < b.minute.tokens
	}
	if a.inFlight != b.inFlight {
		return a.inFlight < b.inFlight
	}
	return a.idx < b.idx
}

// reset puts every key in the heap and queues its window's buckets.
func (h *leastUsed) reset(keys []*keyState) {
	h.used, h.expiries, h.expHead = h.used[:0], h.expiries[:0], 0
	for i, k := range keys {
		k.idx, k.hidx = i, len(h.used)
		h.used = append(h.used, k)
		w := &k.minute
		for j := range w.len {
			if b := w.b[(w.head+j)%slots]; b.tokens > 0 {
				h.expiries = append(h.expiries, expiry{k: k, sec: b.sec})
			}
		}
	}
	slices.SortFunc(h.expiries, func(a, b expiry) int { return int(a.sec - b.sec) })
	for i := len(h.used)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// inHeap reports whether k is in the heap.
func (h *leastUsed) inHeap(k *keyState) bool {
	return k.hidx >= 0 && k.hidx < len(h.used) && h.used[k.hidx] == k
}

// changed restores k's place after its order changed.
func (h *leastUsed) changed(k *keyState) {
	if !h.inHeap(k) {
		return
	}
	if !h.up(k.hidx) {
		h.down(k.hidx)
	}
}

// opened queues the second of k's window that took its first tokens.
func (h *leastUsed) opened(k *keyState, sec int64) {
	if !h.inHeap(k) {
		return
	}
	if h.expHead > 0 && h.expHead == len(h.expiries) {
		h.expiries, h.expHead = h.expiries[:0], 0 // all applied: reuse
	}
	h.expiries = append(h.expiries, expiry{k: k, sec: sec})
}

// expire applies the window seconds that ended by now. Anything that
// prunes a window in the heap at now must come after it: a key whose
// tokens drop unseen would break the heap's order.
func (h *leastUsed) expire(now time.Time) {
	for h.expHead < len(h.expiries) {
		e := h.expiries[h.expHead]
		if now.Sub(time.Unix(e.sec, 0)) < window {
			break
		}
		h.expiries[h.expHead] = expiry{}
		h.expHead++
		e.k.minute.prune(now)
		h.changed(e.k)
	}
	if h.expHead > 1024 && h.expHead*2 > len(h.expiries) { // compact
		n := copy(h.expiries, h.expiries[h.expHead:])
		clear(h.expiries[n:])
		h.expiries, h.expHead = h.expiries[:n], 0
	}
}

// pick takes keys off the heap in order until one is usable, and puts
// them all back. The pool has applied the expired seconds.
func (h *leastUsed) pick(p *Pool) int {
	skipped := h.scratch[:0]
	best := -1
	for len(h.used) > 0 {
		k := h.pop()
		skipped = append(skipped, k)
		if p.usable(k) {
			best = k.idx
			break
		}
	}
	for _, k := range skipped {
		h.push(k)
	}
	clear(skipped)
	h.scratch = skipped[:0]
	return best
}

func (h *leastUsed) push(k *keyState) {
	k.hidx = len(h.used)
	h.used = append(h.used, k)
	h.up(k.hidx)
}

func (h *leastUsed) pop() *keyState {
	n := len(h.used) - 1
	h.swap(0, n)
	k := h.used[n]
	h.used[n] = nil
	h.used = h.used[:n]
	if n > 0 {
		h.down(0)
	}
	k.hidx = -1
	return k
}

func (h *leastUsed) swap(i, j int) {
	h.used[i], h.used[j] = h.used[j], h.used[i]
	h.used[i].hidx, h.used[j].hidx = i, j
}

// up moves the key at i toward the root; it reports whether it moved.
func (h *leastUsed) up(i int) bool {
	moved := false
	for i > 0 {
		parent := (i - 1) / 2
		if !lessUsed(h.used[i], h.used[parent]) {
			break
		}
		h.swap(i, parent)
		i, moved = parent, true
	}
	return moved
}

func (h *leastUsed) down(i int) {
	n := len(h.used)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && lessUsed(h.used[r], h.used[l]) {
			m = r
		}
		if !lessUsed(h.used[m], h.used[i]) {
			return
		}
		h.swap(i, m)
		i = m
	}
}
