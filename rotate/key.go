// SPDX-License-Identifier: MIT

package rotate

import (
	"maps"
	"path"
	"slices"
	"time"
)

// KeyState is what a key is doing now, as status, list and metrics name
// it.
type KeyState string

const (
	Ready    KeyState = "ready"
	Cooling  KeyState = "cooling"  // rate limited or forbidden, for a while
	Limited  KeyState = "limited"  // at rpm, tpm, max_concurrent or a daily budget
	Parked   KeyState = "parked"   // invalid key, quota or billing: tried again by a probe
	Disabled KeyState = "disabled" // by hand
	// Unavailable: its secret could not be read (a locked keychain, a
	// failing secret_cmd).
	Unavailable KeyState = "unavailable"
)

// KeyStates lists every state.
func KeyStates() []KeyState {
	return []KeyState{Ready, Cooling, Limited, Parked, Disabled, Unavailable}
}

// Serving reports whether a key in state s takes requests (a limited key
// does, once its window moves on).
func (s KeyState) Serving() bool { return s == Ready || s == Limited }

// keyState is the live state of one key.
type keyState struct {
	spec KeySpec

	probing bool   // a parked key's probe is in flight
	skipSeq uint64 // the pick that found the key unusable
	idx     int    // its place in the keyfile
	hidx    int    // its place in the least-used heap; -1 when not in it

	// Cooling: the whole key, or one model.
	coolUntil  time.Time
	coolReason string
	coolCause  Class
	modelCool  map[string]cooldown
	coolLevel  int // rate limits in a row, for backoff
	wrr        int // smooth weighted round-robin weight

	// Parked: quota, billing or an invalid key, until a probe succeeds.
	parked      bool
	parkReason  string
	parkCause   Class
	nextProbe   time.Time
	probeLevel  int
	parkedUntil time.Time // a known return (daily reset)

	// Disabled by hand; zero until means until enabled.
	disabled      bool
	disabledUntil time.Time

	// Nearly spent (its remaining requests or tokens under the policy's
	// share) until the reset its answer gave; zero when not.
	scarceUntil time.Time

	// Conversations that came back to it, and that moved to it.
	sessionHits, sessionMoves uint64

	failRun      int
	failRunStart uint64 // the pool's successes when the run began
	failLevel    int
	failures     []Failure

	// What it spent, against its limits.
	spending
}

// Limits are the numbers a key or a group is held to; 0 means none.
type Limits struct {
	RPM, TPM, MaxConcurrent int
	RPD, TPD                int // per UTC day
}

// spending is what a key, or a group of keys, spent against its Limits:
// the requests in flight, the last minute's, and today's.
type spending struct {
	inFlight  int
	minute    minuteWindow
	day       int // days since the epoch, UTC
	dayReqs   int
	dayTokens int
}

type cooldown struct {
	until  time.Time
	reason string
	cause  Class // the answer that set it
}

// Failure is one recent failure of a key, for status.
type Failure struct {
	At     time.Time
	Class  Class
	Status int
	Model  string
	Reason string
}

func (k *keyState) clearTransient() {
	k.coolUntil, k.coolReason, k.coolCause, k.modelCool, k.coolLevel = time.Time{}, "", Success, nil, 0
	k.parked, k.parkReason, k.nextProbe, k.probeLevel, k.parkedUntil, k.probing = false, "", time.Time{}, 0, time.Time{}, false
	k.failRun, k.failLevel = 0, 0
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
		return cooldown{until: k.coolUntil, reason: k.coolReason, cause: k.coolCause}, true
	}
	if c, ok := k.modelCool[model]; ok {
		if now.Before(c.until) {
			return c, true
		}
		delete(k.modelCool, model)
	}
	return cooldown{}, false
}

// limits are the key's own.
func (k *keyState) limits() Limits {
	s := &k.spec
	return Limits{RPM: s.RPM, TPM: s.TPM, MaxConcurrent: s.MaxConcurrent, RPD: s.RPD, TPD: s.TPD}
}

// limitFrees says whether k is within its own limits now; when it is
// not, the time it will be (zero: when a request in flight ends).
func (k *keyState) limitFrees(now time.Time) (time.Time, bool) { return k.frees(now, k.limits()) }

// frees says whether s is within l now; when it is not, the time it
// will be (zero: when a request in flight ends).
func (s *spending) frees(now time.Time, l Limits) (time.Time, bool) {
	if l.MaxConcurrent > 0 && s.inFlight >= l.MaxConcurrent {
		return time.Time{}, false
	}
	if l.RPM > 0 || l.TPM > 0 {
		w := &s.minute
		w.prune(now)
		if l.RPM > 0 && w.reqs >= l.RPM {
			return w.frees(l.RPM, w.reqs, bucketReqs), false
		}
		if l.TPM > 0 && w.tokens >= l.TPM {
			return w.frees(l.TPM, w.tokens, bucketTokens), false
		}
	}
	s.rollDay(now)
	if (l.RPD > 0 && s.dayReqs >= l.RPD) || (l.TPD > 0 && s.dayTokens >= l.TPD) {
		d := now.UTC()
		return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, time.UTC), false
	}
	return time.Time{}, true
}

// start counts a request starting at now.
func (s *spending) start(now time.Time) {
	s.inFlight++
	s.minute.request(now)
	s.rollDay(now)
	s.dayReqs++
}

// spend counts tokens used at now (at most maxAnswerTokens: an answer
// that said more, or fewer than none, is held to that). It reports
// whether they are the first of a second of the window, and which.
func (s *spending) spend(now time.Time, tokens int) (int64, bool) {
	tokens = min(tokens, maxAnswerTokens)
	if tokens <= 0 {
		return 0, false
	}
	sec, first := s.minute.spend(now, tokens)
	s.rollDay(now)
	s.dayTokens = satAdd(s.dayTokens, tokens)
	return sec, first
}

func (s *spending) rollDay(now time.Time) {
	if d := int(now.Unix() / 86400); d != s.day {
		s.day, s.dayReqs, s.dayTokens = d, 0, 0
	}
}

func (k *keyState) coolModel(model string, until time.Time, reason string, cause Class) {
	if model == "" {
		if until.After(k.coolUntil) {
			k.coolUntil, k.coolReason, k.coolCause = until, reason, cause
		}
		return
	}
	if k.modelCool == nil {
		k.modelCool = map[string]cooldown{}
	}
	if c, ok := k.modelCool[model]; !ok || until.After(c.until) {
		k.modelCool[model] = cooldown{until: until, reason: reason, cause: cause}
	}
}

// longestCooldown is the key-wide cooldown, else the longest per-model.
func (k *keyState) longestCooldown(now time.Time) *cooldown {
	if now.Before(k.coolUntil) {
		return &cooldown{until: k.coolUntil, reason: k.coolReason, cause: k.coolCause}
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
