// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"sync"
	"time"
)

// Clock tells the time. The daemon passes the real one; tests a fake.
type Clock interface{ Now() time.Time }

// KeySpec is what rotate knows of a key: its name and limits, never its
// secret. Keys are told apart by Name; Fingerprint tells whether the
// secret behind a name changed.
type KeySpec struct {
	Name        string
	Fingerprint string
	Weight      int
	Models      []string // globs; empty: every model
	// Limits; 0 means none.
	RPM, TPM, MaxConcurrent int
	RPD, TPD                int // per UTC day
	// Dollar budgets in nano-dollars (NanoUSD), per UTC day and month.
	BudgetDay, BudgetMonth int64
	// Group names the organisation whose quota the key shares with the
	// other keys of its group ("": its own).
	Group string
	// Entry is the whole keyfile entry less the secret, compared to
	// notice an edit.
	Entry string
	// Unavailable says why the key cannot serve at all (its secret could
	// not be read); "" when it can.
	Unavailable string
}

// Policy is a provider's tuning, from the keyfile.
type Policy struct {
	Strategy Strategy
	// ProbeInterval is how soon a parked key is tried again; it doubles
	// on each failed probe up to 12 times as long.
	ProbeInterval time.Duration
	// Groups are the limits of key groups, by name (KeySpec.Group):
	// every key of a group counts toward them.
	Groups map[string]Limits
	// PaceBelow: a key whose answers say less than this share of its
	// requests or tokens is left (remaining under limit) is scarce until
	// their reset, and gets a request only when no other key can take it.
	// 0: no pacing.
	PaceBelow float64
}

// Pool is the live state of one provider's keys. It lives as long as the
// daemon; a keyfile reload calls Update, and a key keeps its state across
// reloads while its name and secret stay the same.
type Pool struct {
	Name  string
	clock Clock

	mu     sync.Mutex
	policy Policy
	keys   []*keyState
	byName map[string]*keyState
	picker picker
	// q is the request a pick is for, so that strategies ask usable
	// without a closure (Take must not allocate).
	q       query
	circuit circuit
	wake    chan struct{}
	waiting bool // someone holds wake; else signal need not replace it
	// successes counts successes of any key: a key failing alone while
	// others work is the key's problem, not the provider's.
	successes uint64
	sessions  sessionTable
	groups    map[string]*group // those with limits
	// scarce counts keys that said they are nearly spent, lately: while
	// none is, a pick is one pass.
	scarce int
	// hist counts what was refused with no key to name.
	hist history
}

type query struct {
	now   time.Time
	model string
	tried []string
	only  map[string]bool // nil: every key
	// paced: pass over scarce keys (the first of a pick's two passes).
	paced bool
}

// Ask is what one attempt needs a key for.
type Ask struct {
	Model string
	// Tried names keys not to choose again; Only the keys a selection
	// allows (nil: every key).
	Tried []string
	Only  map[string]bool
	// Session names the conversation the request belongs to ("": none):
	// it goes to the key that served the conversation while that key can
	// serve. Pinned says the conversation's state is stored with that key
	// upstream: it never moves, and waits for its key or is denied.
	Session string
	Pinned  bool
}

// NewPool makes an empty pool; Update gives it keys.
func NewPool(name string, clock Clock) *Pool {
	return &Pool{Name: name, clock: clock, byName: map[string]*keyState{}, wake: make(chan struct{}), picker: &roundRobin{}}
}

// Update replaces the pool's keys and policy. A key whose name and
// fingerprint stay keeps its state; one whose entry changed in any way
// is no longer parked or cooling, so it is tried again at once.
func (p *Pool) Update(policy Policy, specs []KeySpec) {
	p.mu.Lock()
	old := p.picker
	p.mu.Unlock()
	pk := newPicker(policy.Strategy, specs, old) // outside the lock: it may take a moment
	p.mu.Lock()
	defer p.mu.Unlock()
	p.policy = policy
	keys := make([]*keyState, 0, len(specs))
	byName := make(map[string]*keyState, len(specs))
	for i, s := range specs {
		k := p.byName[s.Name]
		switch {
		case k == nil:
			k = &keyState{hidx: -1}
		case k.spec.Fingerprint != s.Fingerprint:
			// A new secret under the same name: nothing learned about
			// the old one applies, but a hand-made disable does.
			k = &keyState{hidx: -1, disabled: k.disabled, disabledUntil: k.disabledUntil}
		case k.spec.Entry != s.Entry:
			k.clearTransient(p.clock.Now())
		}
		k.spec, k.idx = s, i
		keys = append(keys, k)
		byName[s.Name] = k
	}
	p.keys, p.byName, p.picker = keys, byName, pk
	groups := map[string]*group{}
	for name, l := range policy.Groups {
		g := p.groups[name]
		if g == nil {
			g = &group{}
		}
		g.limits = l
		g.inFlight = 0
		for _, k := range keys {
			if k.spec.Group == name {
				g.inFlight += k.inFlight
			}
		}
		groups[name] = g
	}
	p.groups = groups
	p.scarce = 0
	for _, k := range keys {
		if !k.scarceUntil.IsZero() {
			p.scarce++
		}
	}
	pk.reset(keys)
	p.signal()
}

func (p *Pool) signal() {
	if p.waiting {
		close(p.wake)
		p.wake, p.waiting = make(chan struct{}), false
	}
}

// Lease is one key chosen for one attempt. Done or Cancel must be called
// exactly once, when the answer has been delivered or given up.
type Lease struct {
	p     *Pool
	k     *keyState
	Name  string
	probe bool
	model string
	half  bool // the circuit's half-open probe
	// Affinity is what the request's conversation found.
	Affinity Affinity
}

// Take picks a key for a: the conversation's key when it has one that
// can serve, else one the strategy picks among those usable, keys that
// said they are nearly spent last. It never blocks: when no key is usable
// it says why and when one may be.
func (p *Pool) Take(a Ask) (Lease, *Denial) {
	model, tried, only := a.Model, a.Tried, a.Only
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.picker.expire(now) // windows pruned below are then already in order

	half, d := p.circuitLets(now)
	if d != nil {
		return Lease{}, d
	}

	p.q = query{now: now, model: model, tried: tried, only: only}
	idx, aff, d := p.conversationKey(a, now)
	if idx < 0 && d == nil {
		idx = p.pick()
	}
	p.q = query{}
	if idx < 0 {
		if d == nil {
			d = p.deny(now, model, tried, only)
		}
		p.waiting = true
		d.Wake = p.wake
		return Lease{}, d
	}
	k := p.keys[idx]
	switch aff {
	case Hit:
		k.sessionHits++
	case Moved:
		k.sessionMoves++
	}
	if a.Session != "" {
		// A reference not seen before is pinned only once this key's
		// answer shows it has it (Bind): the strategy's pick may be a key
		// of another organisation.
		p.sessions.put(a.Session, k.spec.Name, a.Pinned && aff == Hit, now)
	}
	k.start(now)
	k.hist.request(now)
	if g := p.groups[k.spec.Group]; g != nil {
		g.start(now)
	}
	p.picker.changed(k)
	probe := false
	if k.parked {
		k.probing, probe = true, true
	}
	if half {
		p.circuit.probing = true
	}
	return Lease{p: p, k: k, Name: k.spec.Name, probe: probe, model: model, half: half, Affinity: aff}, nil
}

// circuitLets says whether the provider's circuit lets a request through
// at now, and whether as its half-open probe; when it does not, why. The
// caller holds p.mu.
func (p *Pool) circuitLets(now time.Time) (half bool, d *Denial) {
	switch p.circuit.state(now) {
	case circuitOpen:
		p.waiting = true
		return false, &Denial{Code: ProviderUnavailable, Until: p.circuit.until, Wake: p.wake,
			Detail: fmt.Sprintf("%s is failing (%s); llmkey tries it again in %s", p.Name, p.circuit.reason, roundUp(p.circuit.until.Sub(now)))}
	case circuitHalfOpen:
		if p.circuit.probing {
			p.waiting = true
			return false, &Denial{Code: ProviderUnavailable, OnRelease: true, Until: now.Add(time.Second), Wake: p.wake,
				Detail: fmt.Sprintf("%s is failing (%s); a probe request is under way", p.Name, p.circuit.reason)}
		}
		return true, nil
	}
	return false, nil
}

// conversationKey is the index of the key of a's conversation when that
// key can take the request (-1: the strategy picks), what the request
// found in the table, and the denial of a pinned conversation whose key
// cannot serve. The caller holds p.mu, with p.q set.
func (p *Pool) conversationKey(a Ask, now time.Time) (int, Affinity, *Denial) {
	if a.Session == "" {
		return -1, NoSession, nil
	}
	s, ok := p.sessions.get(a.Session, now)
	if !ok {
		return -1, NewSession, nil
	}
	k := p.byName[s.key]
	switch {
	case k != nil && p.usable(k):
		return k.idx, Hit, nil
	case s.pinned:
		return -1, Hit, p.denyPinned(now, s.key, k, a.Model, a.Tried, a.Only)
	}
	return -1, Moved, nil
}

// pick is the strategy's pick among the usable keys: first among those
// not scarce, then, when none of those is usable, among all.
func (p *Pool) pick() int {
	if p.scarce > 0 {
		p.q.paced = true
		idx := p.picker.pick(p)
		p.q.paced = false
		if idx >= 0 {
			return idx
		}
	}
	return p.picker.pick(p)
}

// Bind says that the conversation id lives with the named key: an
// answer of that key created it (a stored response, a conversation, a
// cached content). Requests that refer to it then go to that key only.
func (p *Pool) Bind(id, name string) {
	if id == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byName[name] != nil {
		p.sessions.put(id, name, true, p.clock.Now())
	}
}

// Unbind forgets that the conversation id lives with the named key (its
// upstream said it does not): the next request of it may go to another.
func (p *Pool) Unbind(id, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.sessions.byID[sessionID(id)]; ok && e.Value.(*session).key == name {
		p.sessions.remove(e)
	}
}

// Sessions is how many conversations the pool keeps a key for.
func (p *Pool) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessions.len()
}

// usable reports whether k may take the request being picked for (p.q)
// now: the one predicate every strategy asks.
func (p *Pool) usable(k *keyState) bool {
	now := p.q.now
	if !k.allows(p.q.model) || k.disabledAt(now) || (p.q.only != nil && !p.q.only[k.spec.Name]) || k.spec.Unavailable != "" {
		return false
	}
	for _, t := range p.q.tried {
		if t == k.spec.Name {
			return false
		}
	}
	if k.parked {
		// A parked key serves one request as its probe, once due.
		return !k.probing && !now.Before(k.nextProbe) && !now.Before(k.parkedUntil)
	}
	if _, cooling := k.coolingFor(now, p.q.model); cooling {
		return false
	}
	if p.q.paced && p.isScarce(k, now) {
		return false
	}
	if _, ok := k.limitFrees(now); !ok {
		return false
	}
	if g := p.groups[k.spec.Group]; g != nil {
		if _, ok := g.frees(now, g.limits); !ok {
			return false
		}
	}
	return true
}

// group is a [group.NAME] of the keyfile: keys that share one
// organisation's limits, held to them together.
type group struct {
	limits Limits
	spending
}

// groupSpending is what k's group spent, or nil when k's group has no
// limits.
func (p *Pool) groupSpending(k *keyState) *spending {
	if g := p.groups[k.spec.Group]; g != nil {
		return &g.spending
	}
	return nil
}

// isScarce reports whether k said it is nearly spent, until a reset
// still to come; one whose reset passed is no longer counted.
func (p *Pool) isScarce(k *keyState, now time.Time) bool {
	if k.scarceUntil.IsZero() {
		return false
	}
	if now.Before(k.scarceUntil) {
		return true
	}
	p.setScarce(k, time.Time{})
	return false
}

// setScarce marks k scarce until until (zero: not scarce).
func (p *Pool) setScarce(k *keyState, until time.Time) {
	switch was := !k.scarceUntil.IsZero(); {
	case was && until.IsZero():
		p.scarce--
	case !was && !until.IsZero():
		p.scarce++
	}
	k.scarceUntil = until
}

// Cancel releases the lease without judging the key: the client went
// away, or the attempt never started.
func (l Lease) Cancel() {
	if l.p == nil {
		return
	}
	p, k := l.p, l.k
	p.mu.Lock()
	defer p.mu.Unlock()
	k.inFlight--
	if g := p.groups[k.spec.Group]; g != nil {
		g.inFlight--
	}
	p.picker.changed(k)
	if l.probe {
		k.probing = false
	}
	if l.half {
		p.circuit.probing = false
	}
	p.signal()
}

// NanoUSD is a dollar in the unit of Spend.Cost and the budgets: costs
// are whole numbers of nano-dollars, so that a cheap model's answer
// counts too.
const NanoUSD = 1_000_000_000

// Spend is what one answer used: its tokens, for tpm, tpd and least-used;
// what they cost, in nano-dollars, for the dollar budgets; and, when its
// model has no price (it then costs nothing here), that model.
type Spend struct {
	Tokens   int
	Cost     int64
	Unpriced string
}

// Done reports what came of the lease's attempt and what its answer
// spent, and releases it.
func (l Lease) Done(o Outcome, s Spend) { l.end(&o, s) }

// Release ends the lease without judging its key again: what its answers
// said was told by Judge.
func (l Lease) Release(s Spend) { l.end(nil, s) }

func (l Lease) end(o *Outcome, s Spend) {
	if l.p == nil {
		return
	}
	p, k := l.p, l.k
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.signal()

	k.inFlight--
	if l.probe {
		k.probing = false
	}
	if g := p.groups[k.spec.Group]; g != nil {
		g.inFlight--
	}
	p.spent(k, now, s)
	p.picker.changed(k)
	if l.half {
		p.circuit.probing = false
	}
	if o != nil {
		p.judge(l, k, *o, now)
	}
}

// spent counts what an answer of k spent at now: toward its limits and
// its group's, least-used's order and its history. The caller holds
// p.mu.
func (p *Pool) spent(k *keyState, now time.Time, s Spend) {
	if sec, first := k.spend(now, s); first {
		p.picker.opened(k, sec)
	}
	k.hist.spent(now, s.Tokens, s.Cost)
	if s.Unpriced != "" && s.Tokens > 0 {
		k.unpriced, k.unpricedDay = s.Unpriced, k.day
	}
	if g := p.groups[k.spec.Group]; g != nil {
		g.spend(now, s)
	}
}

// Spent counts what one answer spent while the lease goes on: a
// connection that carries several requests (a WebSocket) counts each as
// it ends, toward the limits and budgets, and is ended with nothing more.
func (l Lease) Spent(s Spend) {
	if l.p == nil {
		return
	}
	p := l.p
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.signal()
	p.spent(l.k, now, s)
	p.picker.changed(l.k)
}

// Judge applies what an answer said of the lease's key, for model, while
// the lease goes on: a connection that carries several requests (a
// WebSocket) hears of each refusal as it comes, and Done ends it later.
func (l Lease) Judge(o Outcome, model string) {
	if l.p == nil {
		return
	}
	p, k := l.p, l.k
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.signal()
	l.model = model
	p.judge(l, k, o, p.clock.Now())
	p.picker.changed(k)
}

// onKey runs fn on the named key under the lock and wakes whoever waits
// for a key; it reports whether the key exists.
func (p *Pool) onKey(name string, fn func(k *keyState)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.byName[name]
	if k == nil {
		return false
	}
	fn(k)
	p.signal()
	return true
}

// Disable takes the named key out of rotation by hand, until until (zero:
// until Enable). It reports whether the key exists.
func (p *Pool) Disable(name string, until time.Time) bool {
	return p.onKey(name, func(k *keyState) { k.disabled, k.disabledUntil = true, until })
}

// Enable undoes Disable, and unparks the key so that it is tried now.
func (p *Pool) Enable(name string) bool {
	return p.onKey(name, func(k *keyState) {
		k.hist.back(p.clock.Now(), false, true)
		k.disabled, k.disabledUntil = false, time.Time{}
		k.parked, k.parkReason, k.nextProbe, k.probeLevel, k.parkedUntil = false, "", time.Time{}, 0, time.Time{}
	})
}

// Reset forgets what llmkey learned about the key: cooldowns, parking,
// failures, backoff, and that it said it is nearly spent. A hand-made
// Disable stays; the limits' windows stay, since those requests were
// really sent.
func (p *Pool) Reset(name string) bool {
	return p.onKey(name, func(k *keyState) {
		k.clearTransient(p.clock.Now())
		k.failures = nil
		p.setScarce(k, time.Time{})
	})
}

// Rename gives the key from the name to, with all the pool knows of it:
// what its answers taught (cooldowns, parking, failures), its hand-made
// disable, its spending against its limits and its conversations. The
// keyfile's next load names it so, and Update then finds it by its new
// name. It reports whether from was there and to was free.
func (p *Pool) Rename(from, to string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.byName[from]
	if k == nil || p.byName[to] != nil {
		return false
	}
	delete(p.byName, from)
	p.byName[to] = k
	k.spec.Name = to
	for e := p.sessions.lru.Front(); e != nil; e = e.Next() {
		if s := e.Value.(*session); s.key == from {
			s.key = to
		}
	}
	return true
}

// Seed is what a key spent before a restart: today (UTC) and this
// month (UTC, today included), costs in nano-dollars.
type Seed struct {
	Requests, Tokens     int
	CostToday, CostMonth int64
}

// SeedToday counts what a key spent earlier today and this month, before
// a restart, toward its daily limits (rpd, tpd, budget_usd_day) and its
// monthly budget.
func (p *Pool) SeedToday(name string, seed Seed) bool {
	now := p.clock.Now()
	return p.onKey(name, func(k *keyState) {
		for _, s := range []*spending{&k.spending, p.groupSpending(k)} {
			if s != nil {
				s.rollDay(now)
				s.dayReqs = satAdd(s.dayReqs, max(seed.Requests, 0))
				s.dayTokens = satAdd(s.dayTokens, max(seed.Tokens, 0))
				s.dayCost = satAdd64(s.dayCost, max(seed.CostToday, 0))
				s.monthCost = satAdd64(s.monthCost, max(seed.CostMonth, 0))
			}
		}
	})
}

// Disabled lists the keys disabled by hand and until when, to persist.
func (p *Pool) Disabled() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]time.Time{}
	for _, k := range p.keys {
		if k.disabled {
			out[k.spec.Name] = k.disabledUntil
		}
	}
	return out
}

// KeyView is one key's state, for list and status.
type KeyView struct {
	Name   string
	State  KeyState
	Reason string
	// Cause is the class of the answer that set the key aside (cooling
	// or parked); see Class.NeedsUser.
	Cause Class
	// Until is when the state ends, where known (cooling, limited,
	// disabled --for; for parked, the next probe).
	Until    time.Time
	InFlight int
	// In the last minute, and today (UTC).
	RequestsMinute, TokensMinute int
	RequestsToday, TokensToday   int
	Failures                     []Failure
	// Group is the key's group; ScarceUntil, when it said it is nearly
	// spent, the reset it gave (zero: it did not).
	Group       string
	ScarceUntil time.Time
	// SessionHits counts requests of a conversation that came back to
	// the key; SessionMoves, conversations that moved to it because
	// their key could not serve. Both since the daemon started.
	SessionHits, SessionMoves uint64
	// CostToday and CostMonth are what its answers cost today and this
	// month (UTC), in nano-dollars, at the prices the daemon knows;
	// BudgetDay and BudgetMonth its own budgets (0: none).
	CostToday, CostMonth   int64
	BudgetDay, BudgetMonth int64
	// Unpriced names a model without a price it served today: those
	// answers counted nothing toward a dollar budget.
	Unpriced string
	// Left is the smallest share of a limit its last answer said is
	// left, until LeftUntil, that limit's reset (zero: none said).
	Left      float64
	LeftUntil time.Time
}

// View is the pool's keys' state now, in keyfile order, and its circuit:
// "closed", or "open: REASON" until circuitUntil, or "half-open: REASON".
func (p *Pool) View() (keys []KeyView, circuit string, circuitUntil time.Time) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.picker.expire(now)
	for _, k := range p.keys {
		v := KeyView{Name: k.spec.Name, State: Ready, InFlight: k.inFlight, Failures: append([]Failure(nil), k.failures...),
			Group: k.spec.Group, SessionHits: k.sessionHits, SessionMoves: k.sessionMoves}
		if p.isScarce(k, now) {
			v.ScarceUntil = k.scarceUntil
		}
		k.minute.prune(now)
		k.rollDay(now)
		v.RequestsMinute, v.TokensMinute = k.minute.reqs, k.minute.tokens
		v.RequestsToday, v.TokensToday = k.dayReqs, k.dayTokens
		v.CostToday, v.CostMonth, v.BudgetDay, v.BudgetMonth = k.dayCost, k.monthCost, k.spec.BudgetDay, k.spec.BudgetMonth
		if k.unpricedDay == k.day {
			v.Unpriced = k.unpriced
		}
		if now.Before(k.leftUntil) {
			v.Left, v.LeftUntil = k.left, k.leftUntil
		}
		switch {
		case k.spec.Unavailable != "":
			v.State, v.Reason = Unavailable, k.spec.Unavailable
		case k.disabledAt(now):
			v.State, v.Reason, v.Until = Disabled, "disabled by hand", k.disabledUntil
		case k.parked:
			v.State, v.Reason, v.Until, v.Cause = Parked, k.parkReason, laterOf(k.nextProbe, k.parkedUntil), k.parkCause
			if k.probing {
				v.Reason += "; probing now"
			}
		default:
			if c := k.longestCooldown(now); c != nil {
				v.State, v.Reason, v.Until, v.Cause = Cooling, c.reason, c.until, c.cause
			} else if t, ok := k.limitFrees(now); !ok {
				v.State, v.Reason, v.Until = Limited, k.spending.over(k.limits(), "its"), t
			} else if g := p.groups[k.spec.Group]; g != nil {
				if t, ok := g.frees(now, g.limits); !ok {
					v.State, v.Reason, v.Until = Limited, "group "+k.spec.Group+": "+g.over(g.limits, "the group's"), t
				}
			}
		}
		keys = append(keys, v)
	}
	switch p.circuit.state(now) {
	case circuitOpen:
		return keys, "open: " + p.circuit.reason, p.circuit.until
	case circuitHalfOpen:
		return keys, "half-open: " + p.circuit.reason, time.Time{}
	}
	return keys, "closed", time.Time{}
}
