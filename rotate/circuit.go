// SPDX-License-Identifier: MIT

package rotate

import "time"

// circuit is a provider-wide breaker. An overload, or a run of server or
// transport failures across keys, opens it: requests fail fast (or wait)
// without blaming any key. After a backoff one request goes through as a
// probe (half-open); its success closes the circuit, its failure opens it
// again for twice as long.
type circuit struct {
	openFlag bool
	until    time.Time
	reason   string
	level    int
	probing  bool
	run      int // server or transport failures in a row, across keys
}

type circuitState int

const (
	circuitClosed circuitState = iota
	circuitOpen
	circuitHalfOpen
)

func (c *circuit) state(now time.Time) circuitState {
	switch {
	case !c.openFlag:
		return circuitClosed
	case now.Before(c.until):
		return circuitOpen
	}
	return circuitHalfOpen
}

// open opens the circuit for wait, or for the next backoff step.
func (c *circuit) open(now time.Time, wait time.Duration, reason string) {
	if wait <= 0 {
		wait = min(circuitBase<<min(c.level, 10), circuitMax)
	}
	c.level++
	c.openFlag, c.until, c.reason, c.run = true, now.Add(wait), reason, 0
}

// failure counts a server or transport failure; it reports whether the
// circuit is (now) open, so the failure is the provider's, not a key's.
func (c *circuit) failure(now time.Time, reason string) bool {
	c.run++
	if c.run >= circuitRun {
		c.open(now, 0, reason)
		return true
	}
	return false
}

// success closes the circuit.
func (c *circuit) success() { *c = circuit{} }

// alive: the provider answered sensibly (a rate limit, a refusal): it is
// up, whatever the key's trouble.
func (c *circuit) alive() {
	c.run = 0
	if c.openFlag {
		*c = circuit{}
	}
}
