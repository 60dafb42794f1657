// SPDX-License-Identifier: MIT

package rotate

import (
	"testing"
	"time"
)

// Every choice a request makes after a failed attempt or a denial, on the
// fixed clock: one row per rule, grouped by the step it leads to.
func TestDecide(t *testing.T) {
	b := Budget{Start: t0, MaxAttempts: 3, RetryDeadline: time.Minute, MaxWait: 5 * time.Second}
	alone := Route{}
	primary := Route{Fallbacks: 1, OnPrimary: true, PrimaryWait: 2 * time.Second}
	waiting := primary
	waiting.WaitingSince = t0
	onFallback := Route{Fallbacks: 1}
	rl := &Outcome{Class: RateLimited}
	bad := &Outcome{Class: CallerFault}
	over := &Outcome{Class: Overloaded}
	missing := &Outcome{Class: CallerFault, MissingState: true}
	cooling := func(d time.Duration) *Denial { return &Denial{Code: AllKeysCooling, Until: t0.Add(d)} }
	released := &Denial{Code: AllKeysCooling, OnRelease: true}
	parked := &Denial{Code: NoUsableKeys}
	tests := []struct {
		name  string
		route Route
		turn  Turn
		now   time.Time
		want  Step
		until time.Time
	}{
		// Retry: another key may answer better.
		{"retry: a rate limit is retried", alone, Turn{Attempts: 1, Failed: rl}, t0, Retry, time.Time{}},
		{"retry: a transport failure is retried", alone, Turn{Attempts: 1, Failed: &Outcome{Class: Transport}}, t0, Retry, time.Time{}},
		{"retry: before falling over", onFallback, Turn{Attempts: 1, Failed: rl}, t0, Retry, time.Time{}},
		{"retry: stored state missing on a guessed key is looked for on the next", alone, Turn{Attempts: 1, Failed: missing, Unseen: true}, t0, Retry, time.Time{}},
		// Answer.
		{"answer: once the attempts are spent", alone, Turn{Attempts: 3, Failed: rl}, t0, Answer, time.Time{}},
		{"answer: once the retry deadline passed", alone, Turn{Attempts: 1, Failed: rl}, t0.Add(time.Minute), Answer, time.Time{}},
		{"answer: a caller fault at once", alone, Turn{Attempts: 1, Failed: bad}, t0, Answer, time.Time{}},
		{"answer: a caller fault even with a fallback", onFallback, Turn{Attempts: 1, Failed: bad}, t0, Answer, time.Time{}},
		{"answer: an overload with no fallback", alone, Turn{Attempts: 1, Failed: over}, t0, Answer, time.Time{}},
		{"answer: stored state missing on the key that owns it", alone, Turn{Attempts: 1, Failed: missing}, t0, Answer, time.Time{}},
		{"answer: stored state looked for within the attempts", alone, Turn{Attempts: 3, Failed: missing, Unseen: true}, t0, Answer, time.Time{}},
		{"answer: stored state looked for within the deadline", alone, Turn{Attempts: 1, Failed: missing, Unseen: true}, t0.Add(time.Minute), Answer, time.Time{}},
		{"answer: a denial with no known return", alone, Turn{Denied: parked}, t0, Answer, time.Time{}},
		{"answer: a key free after max_wait is not waited for", alone, Turn{Denied: cooling(6 * time.Second)}, t0, Answer, time.Time{}},
		{"answer: no wait for a release once max_wait is spent", alone, Turn{Denied: released}, t0.Add(5 * time.Second), Answer, time.Time{}},
		{"answer: no wait past the retry deadline", alone, Turn{Denied: &Denial{Code: AllKeysCooling, Until: t0.Add(time.Minute + time.Second)}}, t0.Add(time.Minute), Answer, time.Time{}},
		// Wait for max_wait.
		{"wait: for a key free within max_wait", alone, Turn{Attempts: 1, Denied: cooling(3 * time.Second)}, t0.Add(time.Second), Wait, t0.Add(3 * time.Second)},
		{"wait: for a release, up to max_wait", alone, Turn{Denied: released}, t0, Wait, t0.Add(5 * time.Second)},
		// Wait for the primary.
		{"wait for the primary: up to primary_wait", primary, Turn{Denied: cooling(30 * time.Second)}, t0, WaitPrimary, t0.Add(2 * time.Second)},
		{"wait for the primary: until its key frees, when sooner", primary, Turn{Denied: cooling(time.Second)}, t0, WaitPrimary, t0.Add(time.Second)},
		{"wait for the primary: for a release, up to primary_wait", primary, Turn{Denied: released}, t0, WaitPrimary, t0.Add(2 * time.Second)},
		{"wait for the primary: counted from when the wait began", waiting, Turn{Denied: cooling(30 * time.Second)}, t0.Add(time.Second), WaitPrimary, t0.Add(2 * time.Second)},
		// Fall over.
		{"fall over: once primary_wait is spent", waiting, Turn{Denied: cooling(30 * time.Second)}, t0.Add(2 * time.Second), FallOver, time.Time{}},
		{"fall over: at once when no primary key comes back by itself", primary, Turn{Denied: parked}, t0, FallOver, time.Time{}},
		{"fall over: at once from a fallback that cannot serve", onFallback, Turn{Denied: cooling(time.Second)}, t0, FallOver, time.Time{}},
		{"fall over: after the last retryable failure", primary, Turn{Attempts: 3, Failed: rl}, t0, FallOver, time.Time{}},
		{"fall over: after an overload, which no sibling key would better", primary, Turn{Attempts: 1, Failed: over}, t0, FallOver, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(b, tt.route, tt.turn, tt.now)
			if d.Step != tt.want || !d.Until.Equal(tt.until) {
				t.Errorf("got %s until %v, want %s until %v", d.Step, d.Until, tt.want, tt.until)
			}
		})
	}
}

// With max_wait 0 a request never waits.
func TestDecideNeverWaitsWithoutMaxWait(t *testing.T) {
	b := Budget{Start: t0, MaxAttempts: 4, RetryDeadline: time.Minute}
	if d := Decide(b, Route{}, Turn{Denied: &Denial{Code: AllKeysCooling, Until: t0.Add(time.Millisecond)}}, t0); d.Step != Answer {
		t.Errorf("got %s", d.Step)
	}
}

// What a failed attempt keeps the request off: the key again, exactly
// when nothing else (a cooldown, a park) keeps it out of rotation.
func TestExcludes(t *testing.T) {
	for _, c := range Classes() {
		o := Outcome{Class: c}
		if want := c != Success && c != CallerFault && c != Overloaded && c.SetsAside() == Ready; o.Excludes() != want {
			t.Errorf("%s: Excludes %v, want %v", c, o.Excludes(), want)
		}
	}
	if !(Outcome{Class: CallerFault, MissingState: true}).Excludes() {
		t.Error("a key without the stored state may be tried again for it")
	}
}
