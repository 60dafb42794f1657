// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// KeyState is what a key is doing now, as status, list and metrics name
// it.
type KeyState string

const (
	Ready    KeyState = "ready"
	Cooling  KeyState = "cooling"  // rate limited or forbidden, for a while
	Limited  KeyState = "limited"  // at rpm, tpm, max_concurrent, a daily budget or a dollar budget
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

	// The last share of a limit its answers said is left, until that
	// limit resets (zero: they said nothing).
	left      float64
	leftUntil time.Time
	// A model without a price it served on unpricedDay: its answers
	// counted nothing toward the dollar budgets.
	unpriced    string
	unpricedDay int

	hist history
}

// Limits are the numbers a key or a group is held to; 0 means none.
type Limits struct {
	RPM, TPM, MaxConcurrent int
	RPD, TPD                int // per UTC day
	// Dollar budgets, in nano-dollars: per UTC day and UTC month.
	BudgetDay, BudgetMonth int64
}

// spending is what a key, or a group of keys, spent against its Limits:
// the requests in flight, the last minute's, today's and this month's.
type spending struct {
	inFlight  int
	minute    minuteWindow
	day       int // days since the epoch, UTC
	dayReqs   int
	dayTokens int
	dayCost   int64 // nano-dollars
	month     int   // months since year 0, UTC
	monthCost int64
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

// clearTransient forgets, at now, what answers set on k: cooldowns,
// parking, failure runs.
func (k *keyState) clearTransient(now time.Time) {
	k.hist.back(now, true, true)
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
// returns a value, not a pointer: Take calls it for every key and must
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
	return Limits{RPM: s.RPM, TPM: s.TPM, MaxConcurrent: s.MaxConcurrent, RPD: s.RPD, TPD: s.TPD,
		BudgetDay: s.BudgetDay, BudgetMonth: s.BudgetMonth}
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
	if l.BudgetMonth > 0 && s.monthCost >= l.BudgetMonth {
		return nextMonth(now), false
	}
	if (l.RPD > 0 && s.dayReqs >= l.RPD) || (l.TPD > 0 && s.dayTokens >= l.TPD) || (l.BudgetDay > 0 && s.dayCost >= l.BudgetDay) {
		return nextDay(now), false
	}
	return time.Time{}, true
}

// nextDay is the start of the UTC day after now's; nextMonth, of the UTC
// month after now's: when daily and monthly limits start again.
func nextDay(now time.Time) time.Time {
	d := now.UTC()
	return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, time.UTC)
}

func nextMonth(now time.Time) time.Time {
	d := now.UTC()
	return time.Date(d.Year(), d.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

// start counts a request starting at now.
func (s *spending) start(now time.Time) {
	s.inFlight++
	s.minute.request(now)
	s.rollDay(now)
	s.dayReqs++
}

// spend counts an answer's tokens and cost at now (tokens at most
// maxAnswerTokens: an answer that said more, or fewer than none, is held
// to that). It reports whether the tokens are the first of a second of
// the window, and which.
func (s *spending) spend(now time.Time, sp Spend) (int64, bool) {
	s.rollDay(now)
	if sp.Cost > 0 {
		s.dayCost = satAdd64(s.dayCost, sp.Cost)
		s.monthCost = satAdd64(s.monthCost, sp.Cost)
	}
	tokens := min(sp.Tokens, maxAnswerTokens)
	if tokens <= 0 {
		return 0, false
	}
	sec, first := s.minute.spend(now, tokens)
	s.dayTokens = satAdd(s.dayTokens, tokens)
	return sec, first
}

// rollDay starts the day's counts when now is in another UTC day than
// the last count, and the month's when in another UTC month.
func (s *spending) rollDay(now time.Time) {
	d := int(now.Unix() / 86400)
	if d == s.day {
		return
	}
	s.day, s.dayReqs, s.dayTokens, s.dayCost = d, 0, 0, 0
	y, m, _ := now.UTC().Date()
	if mo := y*12 + int(m) - 1; mo != s.month {
		s.month, s.monthCost = mo, 0
	}
}

// coolModel cools k for model ("": every model) until until, set at now
// by an answer of class cause.
func (k *keyState) coolModel(now time.Time, model string, until time.Time, reason string, cause Class) {
	k.hist.cooled(now, until)
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

// over says which of l s is at, for a person; whose names its owner
// ("its", "the group's"). The caller found it at one (frees) just now.
func (s *spending) over(l Limits, whose string) string {
	switch {
	case l.MaxConcurrent > 0 && s.inFlight >= l.MaxConcurrent:
		return fmt.Sprintf("at %s max_concurrent %d", whose, l.MaxConcurrent)
	case l.RPM > 0 && s.minute.reqs >= l.RPM:
		return fmt.Sprintf("at %s rpm %d", whose, l.RPM)
	case l.TPM > 0 && s.minute.tokens >= l.TPM:
		return fmt.Sprintf("at %s tpm %d", whose, l.TPM)
	case l.BudgetMonth > 0 && s.monthCost >= l.BudgetMonth:
		return fmt.Sprintf("over %s monthly budget: spent %s of %s this month (UTC)", whose, usd(s.monthCost), usd(l.BudgetMonth))
	case l.BudgetDay > 0 && s.dayCost >= l.BudgetDay:
		return fmt.Sprintf("over %s daily budget: spent %s of %s today (UTC)", whose, usd(s.dayCost), usd(l.BudgetDay))
	case l.RPD > 0 && s.dayReqs >= l.RPD:
		return fmt.Sprintf("at %s rpd %d today (UTC)", whose, l.RPD)
	case l.TPD > 0 && s.dayTokens >= l.TPD:
		return fmt.Sprintf("at %s tpd %d today (UTC)", whose, l.TPD)
	}
	return "at " + whose + " limit"
}

// usd is an amount of nano-dollars for a person: cents, or the digits a
// small amount needs.
func usd(nano int64) string {
	d := float64(nano) / NanoUSD
	if d >= 0.01 || d == 0 {
		return fmt.Sprintf("$%.2f", d)
	}
	return "$" + strings.TrimRight(fmt.Sprintf("%.6f", d), "0")
}
