// SPDX-License-Identifier: MIT

package rotate

import "time"

// Retry, wait, fall over or answer: what a request does after an attempt
// failed or no key could take it. Every such choice is made here; the
// request path only carries out the Decision.

// Budget bounds one request's tries on the provider it is on now:
// MaxAttempts attempts sent upstream, none started after RetryDeadline
// from Start, and waits for a key only while a key frees within MaxWait
// of Start. A request that falls over to another provider starts a new
// budget there.
type Budget struct {
	Start         time.Time
	MaxAttempts   int
	RetryDeadline time.Duration
	MaxWait       time.Duration
}

// Route is where a request stands along its provider's fallback chain.
type Route struct {
	// Fallbacks is how many providers are left to fall over to (0: none,
	// also for a conversation pinned to its key).
	Fallbacks int
	// OnPrimary: the request is still on its own provider, whose keys it
	// waits for up to PrimaryWait before it falls over.
	OnPrimary   bool
	PrimaryWait time.Duration
	// WaitingSince is when the wait for the primary began (zero: it has
	// not); the caller keeps it from the first WaitPrimary on.
	WaitingSince time.Time
}

// Turn is what happened since the last decision: the attempts sent on
// this provider, and the last of them failed (Failed), or no key could
// take the request (Denied). Exactly one of Failed and Denied is set.
type Turn struct {
	Attempts int
	Failed   *Outcome
	Denied   *Denial
	// Unseen: the request refers to stored state llmkey has not seen
	// created (before a restart, or by another tool), so the key that
	// failed with MissingState was the strategy's guess, not its owner.
	Unseen bool
}

// Step is what a request does next.
type Step uint8

const (
	// Answer the client now: with the last attempt's answer, or with
	// why no key can serve.
	Answer Step = iota
	// Retry on another key of this provider at once.
	Retry
	// Wait until Decision.Until (or the denial's Wake), then ask for a
	// key again: a key frees within max_wait.
	Wait
	// WaitPrimary is Wait on a provider with fallbacks: its keys are
	// waited for up to primary_wait before the request falls over.
	WaitPrimary
	// FallOver to the next provider of the chain.
	FallOver
)

func (s Step) String() string {
	return [...]string{"answer", "retry", "wait", "wait-primary", "fall-over"}[s]
}

// Decision is Decide's answer.
type Decision struct {
	Step  Step
	Until time.Time // for Wait and WaitPrimary
}

// Decide says what a request does next, at now:
//
//   - After a failure another key may not share (Class.Retryable), or
//     stored state missing on a key that was only a guess (Turn.Unseen),
//     it retries while attempts and time are left.
//   - Otherwise a failure falls over when a fallback is left and the
//     class is retryable or an overload (another provider may serve);
//     else it is answered.
//   - A denial on a provider with fallbacks waits for the primary's keys
//     up to primary_wait when one may come back by itself, then falls
//     over; on a fallback it falls over at once.
//   - A denial with no fallback left waits for the soonest key when it
//     frees within max_wait and the deadline (a key that frees when a
//     request in flight ends is waited for up to max_wait); else it is
//     answered.
func Decide(b Budget, r Route, t Turn, now time.Time) Decision {
	if t.Failed != nil {
		return afterFailure(b, r, t, now)
	}
	if r.Fallbacks > 0 {
		return onTheChain(r, t.Denied, now)
	}
	return waitOrAnswer(b, t.Denied, now)
}

func afterFailure(b Budget, r Route, t Turn, now time.Time) Decision {
	o := t.Failed
	left := t.Attempts < b.MaxAttempts && now.Before(b.Start.Add(b.RetryDeadline))
	switch {
	case left && (o.Class.Retryable() || (o.MissingState && t.Unseen)):
		return Decision{Step: Retry}
	case r.Fallbacks > 0 && (o.Class.Retryable() || o.Class == Overloaded):
		return Decision{Step: FallOver}
	}
	return Decision{Step: Answer}
}

// onTheChain decides on a denial when a fallback is left.
func onTheChain(r Route, den *Denial, now time.Time) Decision {
	if !r.OnPrimary {
		return Decision{Step: FallOver}
	}
	since := r.WaitingSince
	if since.IsZero() {
		since = now
	}
	until := since.Add(r.PrimaryWait)
	comesBack := !den.Until.IsZero() || den.OnRelease
	if !comesBack || !now.Before(until) {
		return Decision{Step: FallOver}
	}
	if !den.Until.IsZero() && den.Until.Before(until) {
		until = den.Until
	}
	return Decision{Step: WaitPrimary, Until: until}
}

// waitOrAnswer decides on a denial when no fallback is left.
func waitOrAnswer(b Budget, den *Denial, now time.Time) Decision {
	deadline := b.Start.Add(b.RetryDeadline)
	waitUntil := b.Start.Add(b.MaxWait)
	until := den.Until
	if until.IsZero() && den.OnRelease {
		until = waitUntil
	}
	if now.Before(waitUntil) && now.Before(deadline) && !until.IsZero() && !until.After(waitUntil) {
		return Decision{Step: Wait, Until: until}
	}
	return Decision{Step: Answer}
}
