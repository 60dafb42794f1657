// SPDX-License-Identifier: MIT

package rotate

import "time"

// Class is what an upstream's answer says about the key that got it.
type Class uint8

const (
	Success     Class = iota
	RateLimited       // this key, for this model, for a while
	Quota             // this key's quota or billing is exhausted
	InvalidKey        // the provider does not accept this key
	Forbidden         // this key may not use this model
	Overloaded        // the provider as a whole (Anthropic 529, 503)
	ServerError       // any other 5xx: not the key's fault
	Transport         // connect, reset, header timeout
	CallerFault       // the request itself (400, 404, 413, 422): any key would get it
)

var classNames = [...]string{"success", "rate-limited", "quota", "invalid-key", "forbidden", "overloaded", "server-error", "transport", "caller-fault"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// ParseClass is the class named s (as String names it).
func ParseClass(s string) (Class, bool) {
	for i, n := range classNames {
		if n == s {
			return Class(i), true
		}
	}
	return 0, false
}

// Retryable reports whether another key may get a better answer: the
// request is then safe to send again elsewhere, since nothing of this
// answer has reached the client.
func (c Class) Retryable() bool {
	switch c {
	case RateLimited, Quota, InvalidKey, Forbidden, ServerError, Transport:
		return true
	}
	return false
}

// SetsAside says what an answer of class c does to the key that got it:
// Cooling (out of rotation for a wait, for that model), Parked (out until
// a probe succeeds), or Ready (nothing, or the provider's circuit, not
// the key). judge (effects.go) carries it out; metrics and help describe
// it from here.
func (c Class) SetsAside() KeyState {
	switch c {
	case RateLimited, Forbidden:
		return Cooling
	case Quota, InvalidKey:
		return Parked
	}
	return Ready
}

// NeedsUser reports whether a key set aside by an answer of class c
// stays out until its owner acts: a key the provider refuses, one out of
// quota or billing, one forbidden a model. The others pass by themselves.
func (c Class) NeedsUser() bool { return c == InvalidKey || c == Quota || c == Forbidden }

// Classes lists every class, in order.
func Classes() []Class {
	out := make([]Class, len(classNames))
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// Outcome is one classified upstream answer.
type Outcome struct {
	Class  Class
	Status int // 0 for a transport failure
	// Wait is how long the provider asked to wait (0: it did not say), and
	// WaitSource where it said so. For a success, a non-zero Wait means a
	// remaining count reached 0: the key is spent until then.
	Wait       time.Duration
	WaitSource string
	// Until is set when a quota returns at a known time (a daily reset).
	Until time.Time
	// MissingState: the request refers to stored state (a previous
	// response, a conversation, a cached content) that this key's
	// organisation does not have; another key's may.
	MissingState bool
	// OrgWide: the answer says the limit is the organisation's (or the
	// project's), which every key of the key's group shares.
	OrgWide bool
	// Left is the smallest share of a limit a success says is left
	// (remaining over limit, 0 to 1), until LeftFor from now, its reset;
	// LeftFor is 0 when the answer said nothing of it.
	Left    float64
	LeftFor time.Duration
	// Reason is a short text for a person: "429 rate limited", with the
	// provider's code where it gave one. Never the raw body.
	Reason string
}

// TransportOutcome is the outcome of a request that got no answer.
func TransportOutcome(reason string) Outcome {
	return Outcome{Class: Transport, Reason: reason}
}
