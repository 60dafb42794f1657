// SPDX-License-Identifier: MIT

package rotate

import (
	"math"
	"time"
)

// HistoryMinutes is how far back a key's history goes: an hour, a
// bucket per minute.
const HistoryMinutes = 60

// A key's history is its last hour, minute by minute: what it was sent,
// what that cost, how it failed, what was refused, and when it was set
// aside. It is a fixed ring of 16-byte buckets (under 1 KiB a key, busy
// or idle); counting neither allocates nor needs a timer: the ring moves
// on with the clock when something is counted or read. Counts saturate.
type history struct {
	b [HistoryMinutes]minuteCounts
	// minute is the Unix minute of the newest bucket (0: none yet).
	minute int64
	// The last spells of cooling and of parking, in Unix seconds, for
	// the minutes the ring moves on to; park.until is 0 while parked.
	cool, park span
}

type minuteCounts struct {
	reqs, refused uint16
	tokens        uint32
	cost          uint32 // micro-dollars
	fails         [FailureKinds]uint8
	aside         uint8 // asideCooling | asideParked
}

type span struct{ from, until uint32 }

const (
	asideCooling = 1 << iota
	asideParked
)

// FailureKind groups the classes of failure a key's history counts.
type FailureKind uint8

const (
	FailRateLimited FailureKind = iota // rate-limited
	FailKey                            // quota, invalid-key, forbidden: the key itself
	FailUpstream                       // overloaded, server-error, transport: the provider
	FailureKinds
)

var failureKindNames = [FailureKinds]string{"rate_limited", "key", "upstream"}

func (f FailureKind) String() string { return failureKindNames[f] }

// failureKind is the kind of failure an answer of class c is; false for
// a success and a caller's own fault, which say nothing of the key.
func (c Class) failureKind() (FailureKind, bool) {
	switch c {
	case RateLimited:
		return FailRateLimited, true
	case Quota, InvalidKey, Forbidden:
		return FailKey, true
	case Overloaded, ServerError, Transport:
		return FailUpstream, true
	}
	return 0, false
}

// Minute is one minute of a key's (or a provider's) history.
type Minute struct {
	Requests int // attempts sent on the key
	Tokens   int64
	Cost     int64 // nano-dollars, to the micro-dollar
	Failures [FailureKinds]int
	// Refused counts requests llmkey answered itself, without a key.
	Refused int
	// Cooling, Parked: the key was, for some of the minute.
	Cooling, Parked bool
}

func unixMinute(now time.Time) int64 { return now.Unix() / 60 }

func unixSecond(now time.Time) uint32 {
	return uint32(min(max(now.Unix(), 0), math.MaxUint32))
}

// at is the bucket of now's minute, the ring moved on to it. A clock that
// stepped back counts in the newest bucket.
func (h *history) at(now time.Time) *minuteCounts {
	m := unixMinute(now)
	if h.minute == 0 {
		h.minute = m
		h.b[m%HistoryMinutes] = minuteCounts{aside: h.asideIn(m)}
	}
	if m > h.minute {
		from := max(h.minute+1, m-HistoryMinutes+1)
		for i := from; i <= m; i++ {
			h.b[i%HistoryMinutes] = minuteCounts{aside: h.asideIn(i)}
		}
		h.minute = m
	}
	return &h.b[h.minute%HistoryMinutes]
}

// asideIn says whether the last spells of cooling and parking reach into
// minute m.
func (h *history) asideIn(m int64) uint8 {
	start, end := m*60, m*60+60
	var a uint8
	if c := h.cool; c.from != 0 && int64(c.from) < end && int64(c.until) > start {
		a |= asideCooling
	}
	if p := h.park; p.from != 0 && int64(p.from) < end && (p.until == 0 || int64(p.until) > start) {
		a |= asideParked
	}
	return a
}

func add16(a *uint16, n int) { *a = uint16(min(int(*a)+max(n, 0), math.MaxUint16)) }
func add32(a *uint32, n int64) {
	*a = uint32(min(int64(*a)+max(n, 0), math.MaxUint32))
}

func (h *history) request(now time.Time) { add16(&h.at(now).reqs, 1) }
func (h *history) refused(now time.Time) { add16(&h.at(now).refused, 1) }

// spent counts an answer's tokens and its cost in nano-dollars.
func (h *history) spent(now time.Time, tokens int, cost int64) {
	if tokens <= 0 && cost <= 0 {
		return
	}
	b := h.at(now)
	add32(&b.tokens, int64(tokens))
	add32(&b.cost, (cost+500)/1000)
}

func (h *history) failed(now time.Time, c Class) {
	if f, ok := c.failureKind(); ok {
		b := h.at(now)
		b.fails[f] = uint8(min(int(b.fails[f])+1, math.MaxUint8))
	}
}

// cooled marks the key cooling from now until until: the same spell when
// it was cooling still, else a new one.
func (h *history) cooled(now, until time.Time) {
	b := h.at(now)
	n, u := unixSecond(now), unixSecond(until)
	if h.cool.from != 0 && n <= h.cool.until {
		h.cool.until = max(h.cool.until, u)
	} else {
		h.cool = span{from: max(n, 1), until: u}
	}
	b.aside |= asideCooling
}

// parked marks the key parked from now on, until unparked.
func (h *history) parked(now time.Time) {
	b := h.at(now)
	if h.park.from == 0 || h.park.until != 0 {
		h.park = span{from: max(unixSecond(now), 1)}
	}
	b.aside |= asideParked
}

// back ends the spells that were still on at now: cooling (when cooling)
// and parking (when parked).
func (h *history) back(now time.Time, cooling, parked bool) {
	h.at(now)
	n := unixSecond(now)
	if cooling && h.cool.until > n {
		h.cool.until = max(n, h.cool.from)
	}
	if parked && h.park.from != 0 && h.park.until == 0 {
		h.park.until = max(n, h.park.from)
	}
}

// minutes is the last hour at now, oldest first.
func (h *history) minutes(now time.Time) [HistoryMinutes]Minute {
	h.at(now)
	var out [HistoryMinutes]Minute
	for i := range out {
		b := &h.b[(h.minute-HistoryMinutes+1+int64(i))%HistoryMinutes]
		m := &out[i]
		m.Requests, m.Refused, m.Tokens, m.Cost = int(b.reqs), int(b.refused), int64(b.tokens), int64(b.cost)*1000
		for f := range m.Failures {
			m.Failures[f] = int(b.fails[f])
		}
		m.Cooling, m.Parked = b.aside&asideCooling != 0, b.aside&asideParked != 0
	}
	return out
}

// Refused counts a request llmkey answered itself because no key could
// serve it: against the named key, when the request could go to it only
// (a conversation's), else against the provider.
func (p *Pool) Refused(key string) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.byName[key]; k != nil {
		k.hist.refused(now)
		return
	}
	p.hist.refused(now)
}

// KeyHistory is one key's last hour, oldest minute first; the last is
// the minute now, still counting.
type KeyHistory struct {
	Name    string
	Minutes [HistoryMinutes]Minute
}

// History is the last hour of each key, in keyfile order, and of the
// provider itself (what was refused with no key to name), at now.
func (p *Pool) History() (keys []KeyHistory, provider [HistoryMinutes]Minute, now time.Time) {
	now = p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	keys = make([]KeyHistory, len(p.keys))
	for i, k := range p.keys {
		keys[i] = KeyHistory{Name: k.spec.Name, Minutes: k.hist.minutes(now)}
	}
	return keys, p.hist.minutes(now), now
}
