package rotate

import (
	"testing"
	"time"
)

func TestTokenWindowRing(t *testing.T) {
	var w tokWindow
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	for s := range 200 { // more seconds than the ring has slots
		now := start.Add(time.Duration(s) * time.Second)
		for range 5 {
			w.add(now.Add(300*time.Millisecond), 2)
		}
		if want := 10 * min(s+1, 60); w.sum != want || w.len > 60 {
			t.Fatalf("second %d: sum %d (want %d), %d buckets", s, w.sum, want, w.len)
		}
	}
	last := start.Add(199 * time.Second)
	if !w.oldest().Equal(last.Add(-59 * time.Second)) {
		t.Errorf("oldest %v", w.oldest())
	}
	w.prune(last.Add(time.Minute))
	if w.sum != 0 || w.len != 0 {
		t.Errorf("a minute after the last: %d in %d buckets", w.sum, w.len)
	}
}
