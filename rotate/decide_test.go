package rotate

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	b := Budget{Start: t0, MaxAttempts: 3, RetryDeadline: time.Minute, MaxWait: 5 * time.Second}
	rl := &Outcome{Class: RateLimited}
	bad := &Outcome{Class: CallerFault}
	tests := []struct {
		name     string
		attempts int
		failed   *Outcome
		denied   *Denial
		now      time.Time
		want     Step
		until    time.Time
	}{
		{"a rate limit is retried", 1, rl, nil, t0, Retry, time.Time{}},
		{"until the attempts are spent", 3, rl, nil, t0, Answer, time.Time{}},
		{"or the deadline passed", 1, rl, nil, t0.Add(time.Minute), Answer, time.Time{}},
		{"a caller fault is answered at once", 1, bad, nil, t0, Answer, time.Time{}},
		{"a key free within max_wait is waited for", 1, nil, &Denial{Code: AllKeysCooling, Until: t0.Add(3 * time.Second)}, t0.Add(time.Second), Wait, t0.Add(3 * time.Second)},
		{"one free later is not", 1, nil, &Denial{Code: AllKeysCooling, Until: t0.Add(6 * time.Second)}, t0, Answer, time.Time{}},
		{"a key freed by a release is waited for up to max_wait", 0, nil, &Denial{Code: AllKeysCooling, OnRelease: true}, t0, Wait, t0.Add(5 * time.Second)},
		{"no wait once max_wait is spent", 0, nil, &Denial{Code: AllKeysCooling, OnRelease: true}, t0.Add(5 * time.Second), Answer, time.Time{}},
		{"a denial with no known return is answered", 0, nil, &Denial{Code: NoUsableKeys}, t0, Answer, time.Time{}},
		{"no wait past the retry deadline", 0, nil, &Denial{Code: AllKeysCooling, Until: t0.Add(time.Minute + time.Second)},
			t0.Add(time.Minute), Answer, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(b, tt.attempts, tt.failed, tt.denied, tt.now)
			if d.Step != tt.want || !d.Until.Equal(tt.until) {
				t.Errorf("got %s until %v, want %s until %v", d.Step, d.Until, tt.want, tt.until)
			}
		})
	}
	if b := (Budget{Start: t0, MaxAttempts: 4, RetryDeadline: time.Minute}); Decide(b, 1, &Outcome{Class: Transport}, nil, t0).Step != Retry {
		t.Error("a transport failure is not retried")
	}
}

// With max_wait 0 a request never waits.
func TestDecideNeverWaitsWithoutMaxWait(t *testing.T) {
	b := Budget{Start: t0, MaxAttempts: 4, RetryDeadline: time.Minute}
	if d := Decide(b, 0, nil, &Denial{Code: AllKeysCooling, Until: t0.Add(time.Millisecond)}, t0); d.Step != Answer {
		t.Errorf("got %s", d.Step)
	}
}
