// SPDX-License-Identifier: MIT

package state

// BuiltinPricesAsOf dates the built-in prices: the providers' list
// prices, in dollars per million tokens, as they were then. A keyfile's
// [pricing."MODEL"] overrides them (a newer price, a discount, a model
// not here).
const BuiltinPricesAsOf = "2025-11"

func p(in, out, cacheRead, cacheWrite float64) Price {
	pr := Price{Input: &in, Output: &out, CacheRead: &cacheRead}
	if cacheWrite > 0 {
		pr.CacheWrite = &cacheWrite
	}
	return pr
}

// builtinPrices are the common models of the built-in providers, by name
// or pattern (path.Match), looked up after the keyfile's.
var builtinPrices = map[string]Price{
	"gpt-4o":                  p(2.5, 10, 1.25, 0),
	"gpt-4o-2*":               p(2.5, 10, 1.25, 0),
	"gpt-4o-mini*":            p(0.15, 0.6, 0.075, 0),
	"gpt-4.1":                 p(2, 8, 0.5, 0),
	"gpt-4.1-2*":              p(2, 8, 0.5, 0),
	"gpt-4.1-mini*":           p(0.4, 1.6, 0.1, 0),
	"gpt-4.1-nano*":           p(0.1, 0.4, 0.025, 0),
	"gpt-5":                   p(1.25, 10, 0.125, 0),
	"gpt-5-2*":                p(1.25, 10, 0.125, 0),
	"gpt-5-codex*":            p(1.25, 10, 0.125, 0),
	"gpt-5-mini*":             p(0.25, 2, 0.025, 0),
	"gpt-5-nano*":             p(0.05, 0.4, 0.005, 0),
	"o3":                      p(2, 8, 0.5, 0),
	"o3-2*":                   p(2, 8, 0.5, 0),
	"o4-mini*":                p(1.1, 4.4, 0.275, 0),
	"claude-sonnet-4*":        p(3, 15, 0.3, 3.75),
	"claude-3-7-sonnet*":      p(3, 15, 0.3, 3.75),
	"claude-opus-4-5*":        p(5, 25, 0.5, 6.25),
	"claude-opus-4-1*":        p(15, 75, 1.5, 18.75),
	"claude-opus-4-2*":        p(15, 75, 1.5, 18.75),
	"claude-haiku-4*":         p(1, 5, 0.1, 1.25),
	"claude-3-5-haiku*":       p(0.8, 4, 0.08, 1),
	"gemini-2.5-pro*":         p(1.25, 10, 0.31, 0),
	"gemini-2.5-flash":        p(0.3, 2.5, 0.075, 0),
	"gemini-2.5-flash-0*":     p(0.3, 2.5, 0.075, 0),
	"gemini-2.5-flash-lite*":  p(0.1, 0.4, 0.025, 0),
	"gemini-2.0-flash*":       p(0.1, 0.4, 0.025, 0),
	"gemini-2.5-flash-image*": p(0.3, 30, 0.075, 0),
}
