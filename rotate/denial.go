// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"strings"
	"time"
)

// DenialCode says why no key of a pool can take a request.
type DenialCode string

const (
	NoKeys              DenialCode = "no-keys"              // none, or none for this model
	AllKeysCooling      DenialCode = "all-keys-cooling"     // every candidate rate limited or at a limit
	NoUsableKeys        DenialCode = "no-usable-keys"       // parked, disabled or already tried
	ProviderUnavailable DenialCode = "provider-unavailable" // the circuit is open
	// A conversation whose state is stored with one key, which cannot
	// serve now (busy: it may, later), or is gone from the keyfile.
	ConversationKeyBusy DenialCode = "conversation-key-busy"
	ConversationKeyGone DenialCode = "conversation-key-gone"
)

// DenialCodes lists every denial code, in order.
func DenialCodes() []DenialCode {
	return []DenialCode{NoKeys, AllKeysCooling, NoUsableKeys, ProviderUnavailable, ConversationKeyBusy, ConversationKeyGone}
}

// Denial says why no key can serve now, and when one may.
type Denial struct {
	Code DenialCode
	// Until is the soonest time a key may be usable; zero when unknown.
	Until time.Time
	// OnRelease: a key frees when a request in flight ends.
	OnRelease bool
	// Detail names each key's state, for a person.
	Detail string
	// Key names the one key the request could go to, when it could go
	// to one only (a conversation's); "" when any key of the pool could.
	Key string
	// Wake is closed at the next change that may free a key: a request
	// ending, a reload, a manual override.
	Wake <-chan struct{}
}

// deny explains why no key serves model now: the soonest time one may,
// and every key's state in words.
func (p *Pool) deny(now time.Time, model string, tried []string, only map[string]bool) *Denial {
	d := &Denial{Code: NoKeys}
	var soonest time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (soonest.IsZero() || t.Before(soonest)) {
			soonest = t
		}
	}
	var parts []string
	cooling, candidates := 0, 0
	for _, k := range p.keys {
		if !k.allows(model) || (only != nil && !only[k.spec.Name]) {
			continue
		}
		candidates++
		kd := p.keyDenial(k, now, model, tried)
		if kd.why == "" {
			continue
		}
		parts = append(parts, kd.why)
		if kd.held {
			cooling++
		}
		if kd.onRelease {
			d.OnRelease = true
		} else {
			consider(kd.until)
		}
	}
	switch {
	case candidates == 0 && only != nil:
		d.Detail = fmt.Sprintf("no %s key of this token's selection may serve model %q", p.Name, model)
		return d
	case candidates == 0 && len(p.keys) > 0:
		d.Detail = fmt.Sprintf("no %s key may serve model %q (see models in the keyfile)", p.Name, model)
		return d
	case candidates == 0:
		d.Detail = fmt.Sprintf("no keys for %s", p.Name)
		return d
	case cooling > 0:
		d.Code = AllKeysCooling
	default:
		d.Code = NoUsableKeys
	}
	d.Until = soonest
	d.Detail = strings.Join(parts, "; ")
	return d
}

// keyDenied is why one key cannot take a request, in words; held says
// it is only for a while (cooling, at a limit); until is when it may be
// back (zero: not known), or onRelease, when a request in flight ends.
type keyDenied struct {
	why       string
	held      bool
	until     time.Time
	onRelease bool
}

// keyDenial is why k cannot take a request for model now; its why is ""
// when nothing keeps it (the pick found another reason, or none).
func (p *Pool) keyDenial(k *keyState, now time.Time, model string, tried []string) keyDenied {
	name := p.Name + "/" + k.spec.Name
	switch {
	case k.spec.Unavailable != "":
		return keyDenied{why: name + " unavailable: " + k.spec.Unavailable}
	case k.disabledAt(now):
		return keyDenied{why: name + " disabled by hand", until: k.disabledUntil}
	case k.parked:
		next := laterOf(k.nextProbe, k.parkedUntil)
		return keyDenied{why: fmt.Sprintf("%s parked: %s, next try in %s", name, k.parkReason, roundUp(next.Sub(now))), until: next, onRelease: k.probing}
	}
	if c, ok := k.coolingFor(now, model); ok {
		return keyDenied{why: fmt.Sprintf("%s cooling %s (%s)", name, roundUp(c.until.Sub(now)), c.reason), held: true, until: c.until}
	}
	if containsName(tried, k.spec.Name) {
		return keyDenied{why: name + " already tried"}
	}
	if t, ok := k.limitFrees(now); !ok {
		if t.IsZero() {
			return keyDenied{why: fmt.Sprintf("%s at max_concurrent %d", name, k.spec.MaxConcurrent), held: true, onRelease: true}
		}
		return keyDenied{why: fmt.Sprintf("%s %s, for %s", name, k.spending.over(k.limits(), "its"), roundUp(t.Sub(now))), held: true, until: t}
	}
	if g := p.groups[k.spec.Group]; g != nil {
		if t, ok := g.frees(now, g.limits); !ok {
			if t.IsZero() {
				return keyDenied{why: fmt.Sprintf("%s: group %s at its max_concurrent %d", name, k.spec.Group, g.limits.MaxConcurrent), held: true, onRelease: true}
			}
			return keyDenied{why: fmt.Sprintf("%s: group %s %s, for %s", name, k.spec.Group, g.over(g.limits, "its"), roundUp(t.Sub(now))), held: true, until: t}
		}
	}
	return keyDenied{}
}

// denyPinned explains why a conversation pinned to the key name (k; nil
// when it is gone) cannot be served now: as deny would for that key
// alone, or that the key is gone.
func (p *Pool) denyPinned(now time.Time, name string, k *keyState, model string, tried []string, only map[string]bool) *Denial {
	ref := p.Name + "/" + name
	if k == nil || (only != nil && !only[name]) {
		what := "is no longer in the keyfile"
		if k != nil {
			what = "is not in this token's selection"
		}
		return &Denial{Code: ConversationKeyGone, Key: name,
			Detail: fmt.Sprintf("this conversation's stored state (a previous response, a conversation or a cached content) lives with %s, which %s; another key cannot read it: start a new conversation, or bring the key back", ref, what)}
	}
	d := p.deny(now, model, tried, map[string]bool{name: true})
	d.Code, d.Key = ConversationKeyBusy, name
	d.Detail = fmt.Sprintf("this conversation's stored state lives with %s, and only that key can read it: %s", ref, d.Detail)
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
