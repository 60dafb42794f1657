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
// its token window expires: every bucket the window opens is queued, in
// time order, and the expired ones are applied before each pick.

type expiry struct {
	k   *keyState
	sec int64 // the bucket's second: it leaves the window a minute later
}

// lessUsed orders keys for least-used.
func lessUsed(a, b *keyState) bool {
	if a.tokWin.sum != b.tokWin.sum {
		return a.tokWin.sum < b.tokWin.sum
	}
	if a.inFlight != b.inFlight {
		return a.inFlight < b.inFlight
	}
	return a.idx < b.idx
}

// rebuildUsed puts every key in the heap and queues its window's buckets.
// The caller holds p.mu.
func (p *Provider) rebuildUsed(old []*keyState) {
	for _, k := range old {
		k.hidx = -1
	}
	p.used, p.expiries, p.expHead = p.used[:0], p.expiries[:0], 0
	if p.policy.Strategy != LeastUsed {
		return
	}
	for i, k := range p.keys {
		k.idx, k.hidx = i, len(p.used)
		p.used = append(p.used, k)
		w := &k.tokWin
		for j := range w.len {
			p.expiries = append(p.expiries, expiry{k: k, sec: w.b[(w.head+j)%tokSlots].sec})
		}
	}
	slices.SortFunc(p.expiries, func(a, b expiry) int { return int(a.sec - b.sec) })
	for i := len(p.used)/2 - 1; i >= 0; i-- {
		p.down(i)
	}
}

// inHeap reports whether k is in the least-used heap.
func (p *Provider) inHeap(k *keyState) bool {
	return k.hidx >= 0 && k.hidx < len(p.used) && p.used[k.hidx] == k
}

// usedChanged restores k's place after its order changed.
func (p *Provider) usedChanged(k *keyState) {
	if !p.inHeap(k) {
		return
	}
	if !p.up(k.hidx) {
		p.down(k.hidx)
	}
}

// bucketOpened queues a new second of k's token window.
func (p *Provider) bucketOpened(k *keyState, sec int64) {
	if !p.inHeap(k) {
		return
	}
	if p.expHead > 0 && p.expHead == len(p.expiries) {
		p.expiries, p.expHead = p.expiries[:0], 0 // all applied: reuse
	}
	p.expiries = append(p.expiries, expiry{k: k, sec: sec})
}

// expire applies the window seconds that ended by now. Anything that
// prunes a window in the heap at now must come after it: a key whose
// tokens drop unseen would break the heap's order.
func (p *Provider) expire(now time.Time) {
	for p.expHead < len(p.expiries) {
		e := p.expiries[p.expHead]
		if now.Sub(time.Unix(e.sec, 0)) < window {
			break
		}
		p.expiries[p.expHead] = expiry{}
		p.expHead++
		e.k.tokWin.prune(now)
		p.usedChanged(e.k)
	}
	if p.expHead > 1024 && p.expHead*2 > len(p.expiries) { // compact
		n := copy(p.expiries, p.expiries[p.expHead:])
		clear(p.expiries[n:])
		p.expiries, p.expHead = p.expiries[:n], 0
	}
}

// pickLeastUsed takes keys off the heap in order until one is usable,
// and puts them all back. Acquire has applied the expired seconds.
func (p *Provider) pickLeastUsed(now time.Time, model string, tried []string) int {
	skipped := p.scratch[:0]
	best := -1
	for len(p.used) > 0 {
		k := p.pop()
		skipped = append(skipped, k)
		if p.usable(k, now, model, tried) {
			best = k.idx
			break
		}
	}
	for _, k := range skipped {
		p.push(k)
	}
	clear(skipped)
	p.scratch = skipped[:0]
	return best
}

func (p *Provider) push(k *keyState) {
	k.hidx = len(p.used)
	p.used = append(p.used, k)
	p.up(k.hidx)
}

func (p *Provider) pop() *keyState {
	n := len(p.used) - 1
	p.swap(0, n)
	k := p.used[n]
	p.used[n] = nil
	p.used = p.used[:n]
	if n > 0 {
		p.down(0)
	}
	k.hidx = -1
	return k
}

func (p *Provider) swap(i, j int) {
	p.used[i], p.used[j] = p.used[j], p.used[i]
	p.used[i].hidx, p.used[j].hidx = i, j
}

// up moves the key at i toward the root; it reports whether it moved.
func (p *Provider) up(i int) bool {
	moved := false
	for i > 0 {
		parent := (i - 1) / 2
		if !lessUsed(p.used[i], p.used[parent]) {
			break
		}
		p.swap(i, parent)
		i, moved = parent, true
	}
	return moved
}

func (p *Provider) down(i int) {
	n := len(p.used)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && lessUsed(p.used[r], p.used[l]) {
			m = r
		}
		if !lessUsed(p.used[m], p.used[i]) {
			return
		}
		p.swap(i, m)
		i = m
	}
}
