// Package rotate owns key selection: which of a provider's keys serves
// the next request, and what an upstream's answer says about that key.
//
// It classifies every outcome by the provider's wire format (Classify),
// reads how long the provider asked to wait (RetryAfter), and keeps per
// key cooldowns, parking, limits and per provider a circuit breaker
// (Provider). It does no I/O and starts no goroutines; time comes from a
// Clock the caller passes in, so tests run on a fake clock.
package rotate
