// Package rotate will own pure key selection: pools, strategies,
// cooldowns, breakers, limits and error classification, with no I/O and a
// clock passed in. It is empty until rotation lands (issues 3 and 4).
package rotate
