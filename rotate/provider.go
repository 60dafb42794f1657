package rotate

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llmkey/llmkey/state"
)

// Clock tells the time. The daemon passes the real one; tests a fake.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Strategy names, as written in the keyfile.
const (
	RoundRobin = "round-robin"
	FillFirst  = "fill-first"
	LeastUsed  = "least-used"
	Weighted   = "weighted"
)

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
	// Entry is the whole keyfile entry, compared to notice an edit.
	Entry string
}

// Policy is a provider's tuning, from the keyfile.
type Policy struct {
	Strategy string
	// ProbeInterval is how soon a parked key is tried again; it doubles
	// on each failed probe up to 12 times as long.
	ProbeInterval time.Duration
}

// Backoff bounds. A rate limit without a stated wait cools the key for
// 1 s, 2 s, 4 s ... up to a minute; a circuit opens for 1 s ... 30 s.
const (
	coolBase       = time.Second
	coolMax        = time.Minute
	circuitBase    = time.Second
	circuitMax     = 30 * time.Second
	circuitRun     = 5 // server or transport failures in a row, across keys
	keyFailRun     = 3 // the same on one key while others succeed
	keyFailCool    = 10 * time.Second
	keyFailCoolMax = 5 * time.Minute
	recentFailures = 5
	window         = time.Minute
)

// Provider is the live state of one provider's keys. It lives as long as
// the daemon; a keyfile reload calls Update, and a key keeps its state
// across reloads while its name and secret stay the same.
type Provider struct {
	Name  string
	clock Clock

	mu     sync.Mutex
	policy Policy
	keys   []*keyState
	byName map[string]*keyState
	cursor int
	// schedule is one cycle of the weighted strategy's picks (smooth
	// weighted round-robin over every key), so that a pick is a step
	// along it rather than a pass over every key; nil for other
	// strategies or too many weights, which then scan.
	schedule []int32
	schedPos int
	pickSeq  uint64 // numbers picks, to check each key once per pick
	// The least-used strategy's heap and expiry queue (leastused.go).
	used     []*keyState
	expiries []expiry
	expHead  int
	scratch  []*keyState
	circuit  circuit
	wake     chan struct{}
	waiting  bool // someone holds wake; else signal need not replace it
	// successes counts successes of any key: a key failing alone while
	// others work is the key's problem, not the provider's.
	successes uint64
}

// NewProvider makes an empty provider; Update gives it keys.
func NewProvider(name string, clock Clock) *Provider {
	return &Provider{Name: name, clock: clock, byName: map[string]*keyState{}, wake: make(chan struct{})}
}

type keyState struct {
	spec KeySpec

	inFlight int
	probing  bool   // a parked key's probe is in flight
	skipSeq  uint64 // the pick that found the key unusable
	idx      int    // its place in the keyfile
	hidx     int    // its place in the least-used heap; -1 when not in it

	// Cooling: the whole key, or one model.
	coolUntil  time.Time
	coolReason string
	modelCool  map[string]cooldown
	coolLevel  int // rate limits in a row, for backoff
	wrr        int // smooth weighted round-robin weight

	// Parked: quota, billing or an invalid key, until a probe succeeds.
	parked      bool
	parkReason  string
	parkedAt    time.Time
	nextProbe   time.Time
	probeLevel  int
	parkedUntil time.Time // a known return (daily reset)

	// Disabled by hand; zero until means until enabled.
	disabled      bool
	disabledUntil time.Time

	failRun      int
	failRunStart uint64 // the provider's successes when the run began
	failLevel    int
	failures     []Failure

	// Windows for the limits.
	reqTimes  []time.Time // ring of the last RPM request times
	reqHead   int
	tokWin    tokWindow
	day       int // days since the epoch, UTC
	dayReqs   int
	dayTokens int
	requests  int64
	tokens    int64
}

type cooldown struct {
	until  time.Time
	reason string
}

// tokWindow is the tokens of the last minute in one-second buckets: a
// fixed ring, so that a busy key neither allocates nor grows. A bucket
// leaves the window a minute after the start of its second.
type tokWindow struct {
	b         [tokSlots]tokBucket
	head, len int
	sum       int
}

// tokSlots exceeds the buckets a minute can hold, so a prune always makes
// room.
const tokSlots = 64

type tokBucket struct {
	sec    int64
	tokens int
}

func (w *tokWindow) prune(now time.Time) {
	for w.len > 0 {
		b := &w.b[w.head]
		if now.Sub(time.Unix(b.sec, 0)) < window {
			return
		}
		w.sum -= b.tokens
		w.head = (w.head + 1) % tokSlots
		w.len--
	}
}

// add counts tokens now; it reports whether a new second's bucket opened.
func (w *tokWindow) add(now time.Time, tokens int) bool {
	w.prune(now)
	w.sum += tokens
	sec := now.Unix()
	if w.len > 0 {
		if tail := &w.b[(w.head+w.len-1)%tokSlots]; tail.sec >= sec {
			tail.tokens += tokens
			return false
		}
	}
	w.b[(w.head+w.len)%tokSlots] = tokBucket{sec: sec, tokens: tokens}
	w.len++
	return true
}

// oldest is the start of the oldest bucket's second.
func (w *tokWindow) oldest() time.Time { return time.Unix(w.b[w.head].sec, 0) }

// Failure is one recent failure of a key, for status.
type Failure struct {
	At     time.Time `json:"at"`
	Class  string    `json:"class"`
	Status int       `json:"status,omitempty"`
	Model  string    `json:"model,omitempty"`
	Reason string    `json:"reason"`
}

// Update replaces the provider's keys and policy. A key whose name and
// fingerprint stay keeps its state; one whose entry changed in any way
// is no longer parked or cooling, so it is tried again at once.
func (p *Provider) Update(policy Policy, specs []KeySpec) {
	schedule := weightedSchedule(policy.Strategy, specs) // before the lock: it may take a moment
	p.mu.Lock()
	defer p.mu.Unlock()
	p.policy = policy
	p.schedule, p.schedPos = schedule, 0
	keys := make([]*keyState, 0, len(specs))
	byName := make(map[string]*keyState, len(specs))
	for _, s := range specs {
		k := p.byName[s.Name]
		switch {
		case k == nil:
			k = &keyState{}
		case k.spec.Fingerprint != s.Fingerprint:
			// A new secret under the same name: nothing learned about
			// the old one applies, but a hand-made disable does.
			k = &keyState{disabled: k.disabled, disabledUntil: k.disabledUntil}
		case k.spec.Entry != s.Entry:
			k.clearTransient()
		}
		k.spec = s
		if s.RPM > 0 && len(k.reqTimes) != s.RPM {
			k.reqTimes, k.reqHead = make([]time.Time, s.RPM), 0
		} else if s.RPM == 0 {
			k.reqTimes = nil
		}
		keys = append(keys, k)
		byName[s.Name] = k
	}
	old := p.keys
	p.keys, p.byName = keys, byName
	p.rebuildUsed(old)
	if p.cursor >= len(keys) {
		p.cursor = 0
	}
	p.signal()
}

// maxSchedule bounds the weighted schedule (the sum of the weights); with
// more, picks scan the keys.
const maxSchedule = 1 << 14

// weightedSchedule is one cycle of smooth weighted round-robin (as nginx)
// over every key: each key appears weight times, spread out.
func weightedSchedule(strategy string, specs []KeySpec) []int32 {
	if strategy != Weighted || len(specs) == 0 {
		return nil
	}
	total := 0
	for _, s := range specs {
		total += max(s.Weight, 1)
	}
	if total > maxSchedule {
		return nil
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

func (k *keyState) clearTransient() {
	k.coolUntil, k.coolReason, k.modelCool, k.coolLevel = time.Time{}, "", nil, 0
	k.parked, k.parkReason, k.nextProbe, k.probeLevel, k.parkedUntil, k.probing = false, "", time.Time{}, 0, time.Time{}, false
	k.failRun, k.failLevel = 0, 0
}

// Changed is closed at the next change that may free a key: a request
// ending, a reload, a manual override. Waiters select on it.
func (p *Provider) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting = true
	return p.wake
}

func (p *Provider) signal() {
	if p.waiting {
		close(p.wake)
		p.wake, p.waiting = make(chan struct{}), false
	}
}

// Lease is one key chosen for one attempt. Done must be called exactly
// once, when the answer has been delivered or given up.
type Lease struct {
	p     *Provider
	k     *keyState
	Name  string
	probe bool
	model string
	half  bool // the circuit's half-open probe
}

// Denial says why no key can serve now, and when one may.
type Denial struct {
	Code string // "no-keys", "all-keys-cooling", "no-usable-keys", "provider-unavailable"
	// Until is the soonest time a key may be usable; zero when unknown.
	Until time.Time
	// OnRelease: a key frees when a request in flight ends.
	OnRelease bool
	// Detail names each key's state, for a person.
	Detail string
	// Wake is closed at the next change that may free a key.
	Wake <-chan struct{}
}

// Acquire picks a key for model, skipping the names in tried. It never
// blocks: when no key is usable it says why and when one may be.
func (p *Provider) Acquire(model string, tried []string) (Lease, *Denial) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now) // windows pruned below are then already in order

	half := false
	switch p.circuit.state(now) {
	case circuitOpen:
		p.waiting = true
		return Lease{}, &Denial{Code: "provider-unavailable", Until: p.circuit.until, Wake: p.wake,
			Detail: fmt.Sprintf("%s is failing (%s); llmkey tries it again in %s", p.Name, p.circuit.reason, roundUp(p.circuit.until.Sub(now)))}
	case circuitHalfOpen:
		if p.circuit.probing {
			p.waiting = true
			return Lease{}, &Denial{Code: "provider-unavailable", OnRelease: true, Until: now.Add(time.Second), Wake: p.wake,
				Detail: fmt.Sprintf("%s is failing (%s); a probe request is under way", p.Name, p.circuit.reason)}
		}
		half = true
	}

	idx := p.pick(now, model, tried)
	if idx < 0 {
		d := p.deny(now, model, tried)
		p.waiting = true
		d.Wake = p.wake
		return Lease{}, d
	}
	k := p.keys[idx]
	k.inFlight++
	p.usedChanged(k)
	probe := false
	if k.parked {
		k.probing, probe = true, true
	}
	if k.reqTimes != nil {
		k.reqTimes[k.reqHead] = now
		k.reqHead = (k.reqHead + 1) % len(k.reqTimes)
	}
	k.rollDay(now)
	k.dayReqs++
	k.requests++
	if half {
		p.circuit.probing = true
	}
	return Lease{p: p, k: k, Name: k.spec.Name, probe: probe, model: model, half: half}, nil
}

// pick returns the index of the key the strategy chooses, or -1.
func (p *Provider) pick(now time.Time, model string, tried []string) int {
	n := len(p.keys)
	switch p.policy.Strategy {
	case FillFirst:
		for i, k := range p.keys {
			if p.usable(k, now, model, tried) {
				return i
			}
		}
		return -1
	case LeastUsed:
		return p.pickLeastUsed(now, model, tried)
	case Weighted:
		if l := len(p.schedule); l > 0 {
			// A step along the schedule, past keys not usable now; each
			// key is checked once per pick however often it appears.
			p.pickSeq++
			for j := range l {
				pos := (p.schedPos + j) % l
				k := p.keys[p.schedule[pos]]
				if k.skipSeq == p.pickSeq {
					continue
				}
				if p.usable(k, now, model, tried) {
					p.schedPos = (pos + 1) % l
					return int(p.schedule[pos])
				}
				k.skipSeq = p.pickSeq
			}
			return -1
		}
		// Smooth weighted round-robin (as nginx) by scanning: no key
		// waits long for its share.
		best, total := -1, 0
		for i, k := range p.keys {
			if !p.usable(k, now, model, tried) {
				continue
			}
			w := max(k.spec.Weight, 1)
			p.keys[i].wrr += w
			total += w
			if best < 0 || k.wrr > p.keys[best].wrr {
				best = i
			}
		}
		if best >= 0 {
			p.keys[best].wrr -= total
		}
		return best
	}
	for j := range n {
		i := (p.cursor + j) % n
		if p.usable(p.keys[i], now, model, tried) {
			p.cursor = (i + 1) % n
			return i
		}
	}
	return -1
}

// usable reports whether k may take a request for model now.
func (p *Provider) usable(k *keyState, now time.Time, model string, tried []string) bool {
	if !k.allows(model) || k.disabledAt(now) {
		return false
	}
	for _, t := range tried {
		if t == k.spec.Name {
			return false
		}
	}
	if k.parked {
		// A parked key serves one request as its probe, once due.
		return !k.probing && !now.Before(k.nextProbe) && !now.Before(k.parkedUntil)
	}
	if _, cooling := k.coolingFor(now, model); cooling {
		return false
	}
	_, ok := k.limitFrees(now)
	return ok
}

func (k *keyState) allows(model string) bool {
	if len(k.spec.Models) == 0 || model == "" {
		return true
	}
	for _, g := range k.spec.Models {
		if ok, _ := path.Match(g, model); ok || g == model {
			return true
		}
	}
	return false
}

func (k *keyState) disabledAt(now time.Time) bool {
	if k.disabled && !k.disabledUntil.IsZero() && !now.Before(k.disabledUntil) {
		k.disabled, k.disabledUntil = false, time.Time{}
	}
	return k.disabled
}

// coolingFor is the cooldown that keeps k from model now, if any. It
// returns a value, not a pointer: Acquire calls it for every key and must
// not allocate.
func (k *keyState) coolingFor(now time.Time, model string) (cooldown, bool) {
	if now.Before(k.coolUntil) {
		return cooldown{until: k.coolUntil, reason: k.coolReason}, true
	}
	if c, ok := k.modelCool[model]; ok {
		if now.Before(c.until) {
			return c, true
		}
		delete(k.modelCool, model)
	}
	return cooldown{}, false
}

// limitFrees says whether k is within its limits now; when it is not,
// the time it will be (zero: when a request in flight ends).
func (k *keyState) limitFrees(now time.Time) (time.Time, bool) {
	s := &k.spec
	if s.MaxConcurrent > 0 && k.inFlight >= s.MaxConcurrent {
		return time.Time{}, false
	}
	if k.reqTimes != nil {
		// The ring holds the last RPM request times; the oldest is next.
		if oldest := k.reqTimes[k.reqHead]; !oldest.IsZero() && now.Sub(oldest) < window {
			return oldest.Add(window), false
		}
	}
	if s.TPM > 0 {
		k.tokWin.prune(now)
		if k.tokWin.sum >= s.TPM {
			return k.tokWin.oldest().Add(window), false
		}
	}
	k.rollDay(now)
	if (s.RPD > 0 && k.dayReqs >= s.RPD) || (s.TPD > 0 && k.dayTokens >= s.TPD) {
		d := now.UTC()
		return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, time.UTC), false
	}
	return time.Time{}, true
}

func (k *keyState) rollDay(now time.Time) {
	if d := int(now.Unix() / 86400); d != k.day {
		k.day, k.dayReqs, k.dayTokens = d, 0, 0
	}
}

// deny explains why no key serves model now: the soonest time one may,
// and every key's state in words.
func (p *Provider) deny(now time.Time, model string, tried []string) *Denial {
	d := &Denial{Code: "no-keys"}
	var soonest time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (soonest.IsZero() || t.Before(soonest)) {
			soonest = t
		}
	}
	var parts []string
	cooling, parked, candidates := 0, 0, 0
	for _, k := range p.keys {
		if !k.allows(model) {
			continue
		}
		candidates++
		name := p.Name + "/" + k.spec.Name
		switch {
		case k.disabledAt(now):
			parked++
			consider(k.disabledUntil)
			parts = append(parts, name+" disabled by hand")
		case k.parked:
			parked++
			next := laterOf(k.nextProbe, k.parkedUntil)
			if k.probing {
				d.OnRelease = true
			} else {
				consider(next)
			}
			parts = append(parts, fmt.Sprintf("%s parked: %s, next try in %s", name, k.parkReason, roundUp(next.Sub(now))))
		default:
			if c, ok := k.coolingFor(now, model); ok {
				cooling++
				consider(c.until)
				parts = append(parts, fmt.Sprintf("%s cooling %s (%s)", name, roundUp(c.until.Sub(now)), c.reason))
				continue
			}
			if containsName(tried, k.spec.Name) {
				parts = append(parts, name+" already tried")
				continue
			}
			if t, ok := k.limitFrees(now); !ok {
				cooling++
				if t.IsZero() {
					d.OnRelease = true
					parts = append(parts, fmt.Sprintf("%s at max_concurrent %d", name, k.spec.MaxConcurrent))
				} else {
					consider(t)
					parts = append(parts, fmt.Sprintf("%s at its limit for %s", name, roundUp(t.Sub(now))))
				}
			}
		}
	}
	switch {
	case candidates == 0 && len(p.keys) > 0:
		d.Detail = fmt.Sprintf("no %s key may serve model %q (see models in the keyfile)", p.Name, model)
		return d
	case candidates == 0:
		d.Detail = fmt.Sprintf("no keys for %s", p.Name)
		return d
	case cooling > 0:
		d.Code = "all-keys-cooling"
	default:
		d.Code = "no-usable-keys"
	}
	d.Until = soonest
	d.Detail = strings.Join(parts, "; ")
	return d
}

func containsName(names []string, n string) bool {
	for _, t := range names {
		if t == n {
			return true
		}
	}
	return false
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// roundUp renders a wait in whole seconds, rounded up, as Retry-After does.
func roundUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return ((d + time.Second - 1) / time.Second) * time.Second
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
	p.usedChanged(k)
	if l.probe {
		k.probing = false
	}
	if l.half {
		p.circuit.probing = false
	}
	p.signal()
}

// Done reports what came of the lease's attempt and releases it. tokens
// are those the answer used, for tpm, least-used and daily budgets.
func (l Lease) Done(o Outcome, tokens int) {
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
	if tokens > 0 {
		if k.tokWin.add(now, tokens) {
			p.bucketOpened(k, now.Unix())
		}
		k.rollDay(now)
		k.dayTokens += tokens
		k.tokens += int64(tokens)
	}
	p.usedChanged(k)
	if o.Class != Success && o.Class != CallerFault {
		k.failures = append(k.failures, Failure{At: now, Class: o.Class.String(), Status: o.Status, Model: l.model, Reason: o.Reason})
		if len(k.failures) > recentFailures {
			k.failures = k.failures[len(k.failures)-recentFailures:]
		}
	}
	if l.half {
		p.circuit.probing = false
	}

	switch o.Class {
	case Success:
		p.successes++
		p.circuit.success()
		k.failRun, k.failLevel, k.coolLevel = 0, 0, 0
		if k.parked {
			k.parked, k.parkReason, k.probeLevel, k.parkedUntil = false, "", 0, time.Time{}
		}
		if o.Wait > 0 {
			k.coolModel(l.model, now.Add(o.Wait), o.Reason)
		}
	case RateLimited:
		p.circuit.alive()
		wait := o.Wait
		if wait <= 0 {
			wait = min(coolBase<<min(k.coolLevel, 10), coolMax)
			k.coolLevel++
		}
		reason := "rate limited"
		if o.WaitSource != "" {
			reason += " (" + o.WaitSource + ")"
		}
		if l.model != "" {
			reason += " on " + l.model
		}
		k.coolModel(l.model, now.Add(wait), reason)
	case Quota, InvalidKey:
		p.circuit.alive()
		p.park(k, now, o)
	case Forbidden:
		p.circuit.alive()
		reason := "forbidden"
		if l.model != "" {
			reason += " for " + l.model
		}
		k.coolModel(l.model, now.Add(p.probeInterval()), reason+" ("+o.Reason+")")
	case Overloaded:
		if !p.circuit.openFlag || l.half {
			p.circuit.open(now, o.Wait, o.Reason)
		}
	case ServerError, Transport:
		if l.half || p.circuit.openFlag {
			if l.half {
				p.circuit.open(now, 0, o.Reason)
			}
			break // the provider's problem, not this key's
		}
		if p.circuit.failure(now, o.Reason) {
			break
		}
		if k.failRun == 0 {
			k.failRunStart = p.successes
		}
		k.failRun++
		// Failing alone while another key worked since the run began.
		if k.failRun >= keyFailRun && p.successes > k.failRunStart {
			wait := min(keyFailCool<<min(k.failLevel, 10), keyFailCoolMax)
			k.failLevel++
			k.failRun = 0
			k.coolUntil, k.coolReason = now.Add(wait), fmt.Sprintf("%d failures in a row while other keys worked (%s)", keyFailRun, o.Reason)
		}
	case CallerFault:
		p.circuit.alive()
	}
	if l.probe && k.parked && o.Class != Quota && o.Class != InvalidKey && o.Class != Success {
		// The probe learned nothing about the key; try again soon.
		k.nextProbe = now.Add(p.probeInterval())
	}
}

func (k *keyState) coolModel(model string, until time.Time, reason string) {
	if model == "" {
		if until.After(k.coolUntil) {
			k.coolUntil, k.coolReason = until, reason
		}
		return
	}
	if k.modelCool == nil {
		k.modelCool = map[string]cooldown{}
	}
	if c, ok := k.modelCool[model]; !ok || until.After(c.until) {
		k.modelCool[model] = cooldown{until: until, reason: reason}
	}
}

func (p *Provider) probeInterval() time.Duration {
	if p.policy.ProbeInterval > 0 {
		return p.policy.ProbeInterval
	}
	return state.DefaultProbeInterval
}

// park takes k out of rotation until a probe succeeds: the first probe
// after ProbeInterval, or at the stated return; each failed probe doubles
// the interval, up to 12 times.
func (p *Provider) park(k *keyState, now time.Time, o Outcome) {
	if !k.parked {
		k.parkedAt = now
	}
	k.parked = true
	k.parkReason = o.Reason
	interval := p.probeInterval() << min(k.probeLevel, 3)
	interval = min(interval, 12*p.probeInterval())
	k.probeLevel++
	k.nextProbe = now.Add(max(interval, o.Wait))
	k.parkedUntil = o.Until
}

// onKey runs fn on the named key under the lock and wakes whoever waits
// for a key; it reports whether the key exists.
func (p *Provider) onKey(name string, fn func(k *keyState)) bool {
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
func (p *Provider) Disable(name string, until time.Time) bool {
	return p.onKey(name, func(k *keyState) { k.disabled, k.disabledUntil = true, until })
}

// Enable undoes Disable, and unparks the key so that it is tried now.
func (p *Provider) Enable(name string) bool {
	return p.onKey(name, func(k *keyState) {
		k.disabled, k.disabledUntil = false, time.Time{}
		k.parked, k.parkReason, k.nextProbe, k.probeLevel, k.parkedUntil = false, "", time.Time{}, 0, time.Time{}
	})
}

// Reset forgets what llmkey learned about the key: cooldowns, parking,
// failures and backoff. A hand-made Disable stays; the limits' windows
// stay, since those requests were really sent.
func (p *Provider) Reset(name string) bool {
	return p.onKey(name, func(k *keyState) {
		k.clearTransient()
		k.failures = nil
	})
}

// SeedToday counts requests and tokens a key spent earlier today (UTC),
// before a restart, toward its daily budgets (rpd, tpd).
func (p *Provider) SeedToday(name string, requests, tokens int) bool {
	now := p.clock.Now()
	return p.onKey(name, func(k *keyState) {
		k.rollDay(now)
		k.dayReqs += requests
		k.dayTokens += tokens
	})
}

// Disabled lists the keys disabled by hand and until when, to persist.
func (p *Provider) Disabled() map[string]time.Time {
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
	Name string
	// State is ready, cooling, limited, parked or disabled.
	State  string
	Reason string
	// Until is when the state ends, where known (cooling, limited,
	// disabled --for; for parked, the next probe).
	Until    time.Time
	InFlight int
	// In the last minute, and today (UTC).
	RequestsMinute, TokensMinute int
	RequestsToday, TokensToday   int
	Failures                     []Failure
}

// View is the provider's keys' state now, in keyfile order.
func (p *Provider) View() (keys []KeyView, circuit string, circuitUntil time.Time) {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	for _, k := range p.keys {
		v := KeyView{Name: k.spec.Name, State: "ready", InFlight: k.inFlight, Failures: append([]Failure(nil), k.failures...)}
		k.tokWin.prune(now)
		k.rollDay(now)
		v.TokensMinute, v.RequestsToday, v.TokensToday = k.tokWin.sum, k.dayReqs, k.dayTokens
		for _, t := range k.reqTimes {
			if !t.IsZero() && now.Sub(t) < window {
				v.RequestsMinute++
			}
		}
		switch {
		case k.disabledAt(now):
			v.State, v.Reason, v.Until = "disabled", "disabled by hand", k.disabledUntil
		case k.parked:
			v.State, v.Reason, v.Until = "parked", k.parkReason, laterOf(k.nextProbe, k.parkedUntil)
			if k.probing {
				v.Reason += "; probing now"
			}
		default:
			if c := k.longestCooldown(now); c != nil {
				v.State, v.Reason, v.Until = "cooling", c.reason, c.until
			} else if t, ok := k.limitFrees(now); !ok {
				v.State, v.Reason, v.Until = "limited", "at a per-key limit", t
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

// longestCooldown is the key-wide cooldown, else the longest per-model.
func (k *keyState) longestCooldown(now time.Time) *cooldown {
	if now.Before(k.coolUntil) {
		return &cooldown{until: k.coolUntil, reason: k.coolReason}
	}
	var best *cooldown
	for _, m := range slices.Sorted(maps.Keys(k.modelCool)) {
		c := k.modelCool[m]
		if !now.Before(c.until) {
			delete(k.modelCool, m)
			continue
		}
		if best == nil || c.until.After(best.until) {
			best = &c
		}
	}
	return best
}
