// SPDX-License-Identifier: MIT

package rotate

import "time"

// Strategy is how a pool chooses among its usable keys, as the keyfile
// names it.
type Strategy string

const (
	RoundRobin Strategy = "round-robin" // each key in turn
	FillFirst  Strategy = "fill-first"  // the first usable key in keyfile order
	LeastUsed  Strategy = "least-used"  // the fewest tokens in the last minute
	Weighted   Strategy = "weighted"    // in proportion to each key's weight
)

// DefaultStrategy is the strategy of a provider whose keyfile says none.
const DefaultStrategy = RoundRobin

// Strategies lists every strategy.
func Strategies() []Strategy { return []Strategy{RoundRobin, FillFirst, LeastUsed, Weighted} }

// Valid reports whether s names a strategy.
func (s Strategy) Valid() bool {
	for _, v := range Strategies() {
		if s == v {
			return true
		}
	}
	return false
}

// picker is one strategy. Every strategy asks the pool's one predicate,
// Pool.usable, whether a key may take the request; the hooks tell a
// strategy that keeps an order of its own (least-used) what changed.
// The pool's lock is held for every call.
type picker interface {
	// pick returns the index in p.keys of the key to use, or -1.
	pick(p *Pool) int
	// reset takes the pool's keys, after an Update.
	reset(keys []*keyState)
	// changed: k's requests in flight or tokens in the window changed.
	changed(k *keyState)
	// opened: a second of k's window took its first tokens.
	opened(k *keyState, sec int64)
	// expire applies what ended by now; it comes before any pick.
	expire(now time.Time)
}

// newPicker makes the picker of strategy s for keys specs; old is the
// pool's picker before, whose turn a round-robin keeps. It runs outside
// the lock: a weighted schedule may take a moment to build.
func newPicker(s Strategy, specs []KeySpec, old picker) picker {
	switch s {
	case FillFirst:
		return fillFirst{}
	case LeastUsed:
		return &leastUsed{}
	case Weighted:
		return &weighted{schedule: weightedSchedule(specs)}
	}
	if rr, ok := old.(*roundRobin); ok {
		return rr
	}
	return &roundRobin{}
}

// noHooks is a picker that keeps no order of its own.
type noHooks struct{}

func (noHooks) reset([]*keyState)       {}
func (noHooks) changed(*keyState)       {}
func (noHooks) opened(*keyState, int64) {}
func (noHooks) expire(time.Time)        {}

// roundRobin takes the next usable key after the last one it chose.
type roundRobin struct {
	noHooks
	cursor int
}

func (r *roundRobin) reset(keys []*keyState) {
	if r.cursor >= len(keys) {
		r.cursor = 0
	}
}

func (r *roundRobin) pick(p *Pool) int {
	n := len(p.keys)
	for j := range n {
		i := (r.cursor + j) % n
		if p.usable(p.keys[i]) {
			r.cursor = (i + 1) % n
			return i
		}
	}
	return -1
}

// fillFirst takes the first usable key in keyfile order.
type fillFirst struct{ noHooks }

func (fillFirst) pick(p *Pool) int {
	for i, k := range p.keys {
		if p.usable(k) {
			return i
		}
	}
	return -1
}

// weighted is smooth weighted round-robin (as nginx): a key of weight w
// takes w turns of every sum-of-weights picks, spread out, so that no key
// waits long for its share. A key not usable gives its turns to the
// others in proportion.
type weighted struct {
	noHooks
	// schedule is one cycle of picks over every key, so that a pick is
	// a step along it rather than a pass over every key; nil when the
	// weights add up to more than maxSchedule, and then picks scan.
	schedule []int32
	pos      int
	seq      uint64 // numbers picks, to check each key once per pick
}

func (w *weighted) pick(p *Pool) int {
	if l := len(w.schedule); l > 0 {
		// A step along the schedule, past keys not usable now; each key
		// is checked once per pick however often it appears.
		w.seq++
		for j := range l {
			pos := (w.pos + j) % l
			k := p.keys[w.schedule[pos]]
			if k.skipSeq == w.seq {
				continue
			}
			if p.usable(k) {
				w.pos = (pos + 1) % l
				return int(w.schedule[pos])
			}
			k.skipSeq = w.seq
		}
		return -1
	}
	best, total := -1, 0
	for i, k := range p.keys {
		if !p.usable(k) {
			continue
		}
		wt := max(k.spec.Weight, 1)
		p.keys[i].wrr += wt
		total += wt
		if best < 0 || k.wrr > p.keys[best].wrr {
			best = i
		}
	}
	if best >= 0 {
		p.keys[best].wrr -= total
	}
	return best
}

// maxSchedule bounds the weighted schedule (the sum of the weights); with
// more, picks scan the keys.
const maxSchedule = 1 << 14

// weightedSchedule is one cycle of smooth weighted round-robin over every
// key: each key appears weight times, spread out.
func weightedSchedule(specs []KeySpec) []int32 {
	if len(specs) == 0 {
		return nil
	}
	total := 0
	for _, s := range specs {
		total += max(s.Weight, 1)
		if total > maxSchedule {
			return nil
		}
	}
	cur := make([]int, len(specs))
	out := make([]int32, 0, total)
	for range total {
		best := 0
		for i, s := range specs {
			cur[i] += max(s.Weight, 1)
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, int32(best))
	}
	return out
}
