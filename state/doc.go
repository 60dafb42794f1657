// SPDX-License-Identifier: MIT

// Package state owns everything llmkey keeps on disk: where its files live
// (XDG paths and their overrides), the permissions they must have, the
// keyfile itself (its schema, its validation, and edits that change one
// [[key]] block while leaving every other byte of the user's file alone),
// the built-in providers, the usage files and prices, the local token, and
// writes that survive a crash.
//
// Nothing in this package talks to the daemon or the terminal; callers pass
// in what they need (environment lookups, paths) so it can be tested alone.
package state
