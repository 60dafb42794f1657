// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"time"
)

// What each class of answer does to the key that got it, and to the
// pool's circuit: this file is the whole answer. SetsAside (class.go)
// says it in a word for metrics and help; judge carries it out.
//
//	success       clears the key's failures and backoff; a parked key
//	              whose probe succeeded serves again; a remaining count
//	              of 0 cools it for that model until the reset; one
//	              under PaceBelow of its limit makes it scarce until the
//	              reset (picked only when no other key can serve)
//	rate-limited  cools the key for that model: the provider's wait, or
//	              1 s, 2 s, 4 s ... up to a minute; an organisation-wide
//	              limit cools every key of the key's group alike
//	quota         parks the key, and every key of its group (they share
//	              one organisation's billing): out of rotation until a
//	              probe succeeds, the first after ProbeInterval (or at
//	              the known return), each failed probe doubling it up
//	              to 12 times
//	invalid-key   parks the key alone, the same way
//	forbidden     cools the key for that model for ProbeInterval
//	overloaded    opens the provider's circuit; no key is blamed
//	server-error, count toward the circuit (5 in a row across keys open
//	transport     it); a key failing 3 times in a row while other keys
//	              worked is cooled for 10 s, doubling up to 5 min
//	caller-fault  nothing: any key would have got the same answer

// Backoff bounds.
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

// DefaultProbeInterval is how soon a parked key is tried again when the
// policy does not say.
const DefaultProbeInterval = 5 * time.Minute

// judge applies outcome o of lease l's attempt to its key and to the
// circuit. The caller holds p.mu.
func (p *Pool) judge(l Lease, k *keyState, o Outcome, now time.Time) {
	k.hist.failed(now, o.Class)
	if o.Class != Success && o.Class != CallerFault {
		k.failures = append(k.failures, Failure{At: now, Class: o.Class, Status: o.Status, Model: l.model, Reason: o.Reason})
		if len(k.failures) > recentFailures {
			k.failures = k.failures[len(k.failures)-recentFailures:]
		}
	}
	switch o.Class {
	case Success:
		p.succeeded(l, k, o, now)
	case RateLimited:
		p.circuit.alive()
		p.rateLimited(l, k, o, now)
	case Quota:
		p.circuit.alive()
		for _, g := range p.groupOf(k, true) {
			if g == k || !g.parked {
				p.park(g, now, o)
			}
		}
	case InvalidKey:
		p.circuit.alive()
		p.park(k, now, o)
	case Forbidden:
		p.circuit.alive()
		reason := "forbidden"
		if l.model != "" {
			reason += " for " + l.model
		}
		k.coolModel(now, l.model, now.Add(p.probeInterval()), reason+" ("+o.Reason+")", Forbidden)
	case Overloaded:
		if !p.circuit.openFlag || l.half {
			p.circuit.open(now, o.Wait, o.Reason)
		}
	case ServerError, Transport:
		p.failedUpstream(l, k, o, now)
	case CallerFault:
		p.circuit.alive()
	}
	if l.probe && k.parked && o.Class != Quota && o.Class != InvalidKey && o.Class != Success {
		// The probe learned nothing about the key; try again soon.
		k.nextProbe = now.Add(p.probeInterval())
	}
}

// succeeded clears k's failures and backoff and unparks it; a remaining
// count of 0 cools it until the reset, and what its answer said is left
// of its limits may make it scarce.
func (p *Pool) succeeded(l Lease, k *keyState, o Outcome, now time.Time) {
	p.successes++
	p.circuit.success()
	k.failRun, k.failLevel, k.coolLevel = 0, 0, 0
	if k.parked {
		k.hist.back(now, false, true)
		k.parked, k.parkReason, k.probeLevel, k.parkedUntil = false, "", 0, time.Time{}
	}
	if o.Wait > 0 {
		k.coolModel(now, l.model, now.Add(o.Wait), o.Reason, Success)
	}
	if o.LeftFor > 0 {
		k.left, k.leftUntil = o.Left, now.Add(o.LeftFor)
		until := time.Time{}
		if o.Left < p.policy.PaceBelow {
			until = now.Add(o.LeftFor)
		}
		p.setScarce(k, until)
	}
}

// rateLimited cools k for the lease's model (and every key of its group,
// on an organisation-wide limit): for the provider's wait, else 1 s,
// 2 s, 4 s ... up to coolMax.
func (p *Pool) rateLimited(l Lease, k *keyState, o Outcome, now time.Time) {
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
	if o.OrgWide && k.spec.Group != "" {
		reason += ", organisation-wide (group " + k.spec.Group + ")"
	}
	for _, g := range p.groupOf(k, o.OrgWide) {
		g.coolModel(now, l.model, now.Add(wait), reason, RateLimited)
	}
}

// failedUpstream counts a server error or a transport failure toward
// the circuit, and cools a key that fails alone while others work.
func (p *Pool) failedUpstream(l Lease, k *keyState, o Outcome, now time.Time) {
	if l.half || p.circuit.openFlag {
		if l.half {
			p.circuit.open(now, 0, o.Reason)
		}
		return // the provider's problem, not this key's
	}
	if p.circuit.failure(now, o.Reason) {
		return
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
		k.coolModel(now, "", now.Add(wait), fmt.Sprintf("%d failures in a row while other keys worked (%s)", keyFailRun, o.Reason), o.Class)
	}
}

// Checked applies what a check made outside the proxy (llmkey test: one
// cheap call with exactly this key) found: a success brings a parked key
// back, as a successful probe does; an invalid key or a spent quota parks
// it; a rate limit cools it; the other classes say nothing of the key
// and change nothing. It reports whether the key exists.
func (p *Pool) Checked(name string, o Outcome) bool {
	return p.onKey(name, func(k *keyState) {
		switch o.Class {
		case Success, RateLimited, Quota, InvalidKey:
			p.judge(Lease{p: p, k: k, Name: name}, k, o, p.clock.Now())
			p.picker.changed(k)
		}
	})
}

// Excludes reports whether a request whose attempt got o must not take
// the same key again. A server error or a transport failure leaves the
// key in rotation, so nothing else would keep the request from drawing it
// at once; stored state missing on a key means its organisation lacks it.
// The classes that cool or park a key keep it out by that (and a request
// that waits may take it again once it is back).
func (o Outcome) Excludes() bool {
	return o.Class == ServerError || o.Class == Transport || o.MissingState
}

// groupOf is k and, when wide and k has a group, every other key of its
// group: those that share its organisation's limits.
func (p *Pool) groupOf(k *keyState, wide bool) []*keyState {
	if !wide || k.spec.Group == "" {
		return []*keyState{k}
	}
	var out []*keyState
	for _, g := range p.keys {
		if g.spec.Group == k.spec.Group {
			out = append(out, g)
		}
	}
	return out
}

func (p *Pool) probeInterval() time.Duration {
	if p.policy.ProbeInterval > 0 {
		return p.policy.ProbeInterval
	}
	return DefaultProbeInterval
}

// park takes k out of rotation until a probe succeeds: the first probe
// after ProbeInterval, or at the stated return; each failed probe doubles
// the interval, up to 12 times.
func (p *Pool) park(k *keyState, now time.Time, o Outcome) {
	k.hist.parked(now)
	k.parked = true
	k.parkReason, k.parkCause = o.Reason, o.Class
	interval := p.probeInterval() << min(k.probeLevel, 3)
	interval = min(interval, 12*p.probeInterval())
	k.probeLevel++
	k.nextProbe = now.Add(max(interval, o.Wait))
	k.parkedUntil = o.Until
}
