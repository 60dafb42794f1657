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

	inFlight int
	probing  bool   // a parked key's probe is in flight
	skipSeq  uint64 // the pick that found the key unusable
	idx      int    // its place in the keyfile
	hidx     int    // its place in the least-used heap; -1 when not in it

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

	// Windows for the limits.
	reqTimes  []time.Time // ring of the last RPM request times
	reqHead   int
	tokWin    tokWindow
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
