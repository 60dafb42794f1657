// SPDX-License-Identifier: MIT

package state

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a TOML string such as "30s" or "2m".
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. \"30s\", \"2m\", \"1d\")", b)
	}
	if v < 0 {
		return fmt.Errorf("%q must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// or returns d, or def when d is unset. Unexported: outside state a
// setting is read through its accessor, which puts in its default.
func (d Duration) or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// ParseDuration reads the one duration syntax of the command line and the
// keyfile: Go's ("90s", "15m", "2h30m") and days ("1d", "7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("%q is not a duration (use e.g. 90s, 15m, 2h, 1d)", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use e.g. 90s, 15m, 2h, 1d)", s)
	}
	return days + d, nil
}
