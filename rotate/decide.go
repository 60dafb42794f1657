package rotate

import "time"

// Retry, wait or answer: what a request does after an attempt failed or
// no key could take it. The request path only carries out the Decision.

// Budget bounds one request's tries: MaxAttempts attempts sent upstream,
// none started after RetryDeadline from Start, and waits for a key only
// while a key frees within MaxWait of Start.
type Budget struct {
	Start         time.Time
	MaxAttempts   int
	RetryDeadline time.Duration
	MaxWait       time.Duration
}

// Step is what a request does next.
type Step uint8

const (
	// Answer the client now: with the last attempt's answer, or with
	// why no key can serve.
	Answer Step = iota
	// Retry on another key at once.
	Retry
	// Wait until Decision.Until (or the denial's Wake), then ask for a
	// key again.
	Wait
)

func (s Step) String() string {
	return [...]string{"answer", "retry", "wait"}[s]
}

// Decision is Decide's answer.
type Decision struct {
	Step  Step
	Until time.Time // for Wait
}

// Decide says what a request does next after attempts attempts, the last
// of which failed with failed (nil: none failed since), or when no key
// could take it (denied; nil when a key did). Exactly one of failed and
// denied is set.
//
//   - A failure another key may not share (Class.Retryable) is retried
//     while attempts and time are left.
//   - A denial waits for the soonest key when it frees within MaxWait
//     and the deadline (a key that frees when a request in flight ends
//     is waited for up to MaxWait), else it is answered.
func Decide(b Budget, attempts int, failed *Outcome, denied *Denial, now time.Time) Decision {
	deadline := b.Start.Add(b.RetryDeadline)
	if failed != nil {
		if failed.Class.Retryable() && attempts < b.MaxAttempts && now.Before(deadline) {
			return Decision{Step: Retry}
		}
		return Decision{Step: Answer}
	}
	waitUntil := b.Start.Add(b.MaxWait)
	until := denied.Until
	if until.IsZero() && denied.OnRelease {
		until = waitUntil
	}
	if now.Before(waitUntil) && now.Before(deadline) && !until.IsZero() && !until.After(waitUntil) {
		return Decision{Step: Wait, Until: until}
	}
	return Decision{Step: Answer}
}
