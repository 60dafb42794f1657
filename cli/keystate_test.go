// SPDX-License-Identifier: MIT

package cli

import (
	"testing"
	"time"
)

// disable --for says how long in the units --for takes, and until when,
// with the date when that is not today.
func TestDisableForText(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "1d"}, {150 * time.Minute, "2h30m"}, {36 * time.Hour, "1d12h"}, {90 * time.Second, "1m30s"},
		{200000 * time.Hour, "8333d8h"}, {1500 * time.Millisecond, "2s"}, {300 * time.Millisecond, "300ms"},
	} {
		if got := humanDuration(c.d); got != c.want {
			t.Errorf("humanDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	now := time.Date(2026, 11, 24, 3, 1, 59, 0, time.Local)
	for _, c := range []struct {
		until time.Time
		want  string
	}{
		{now.Add(time.Hour), "04:01:59"},
		{now.Add(24 * time.Hour), "2026-11-25 03:01:59"},
		{time.Date(2049, 9, 17, 11, 1, 59, 0, time.Local), "2049-09-17 11:01:59"},
	} {
		if got := untilText(c.until, now); got != c.want {
			t.Errorf("untilText(%v) = %q, want %q", c.until, got, c.want)
		}
	}
}
