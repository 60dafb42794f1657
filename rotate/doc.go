// SPDX-License-Identifier: MIT

// Package rotate owns key selection: which of a provider's keys serves the
// next request, and what an answer, once classified, does to that key.
//
// A Pool is one provider's keys with their cooldowns, parking, limits and
// a circuit breaker for the provider. Its strategies (strategy.go,
// leastused.go) all ask one predicate, Pool.usable; a key's limits
// (rpm, tpm, max_concurrent, rpd, tpd and its dollar budgets, its own
// and its group's) are counted in key.go; effects.go is what each class
// of answer does to a key; Decide (decide.go) is whether a request
// retries, waits or answers. history.go keeps each key's last hour, a
// bucket a minute, for the live view. The vocabulary (Class, Outcome,
// DenialCode, KeyState, Strategy) is defined here once. Reading an answer
// in a provider's wire format is the wire package's.
//
// It is standard library only, does no I/O and starts no goroutines;
// time comes from a Clock the caller passes in, so tests run on a fake
// clock.
package rotate
