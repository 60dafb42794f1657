// Package rotate owns pure key selection: which of a provider's keys
// serves the next request. No I/O, no goroutines of its own; the daemon
// drives it. Today it rotates round-robin; cooldowns, breakers, limits and
// error classification come with issue 4.
package rotate
