// SPDX-License-Identifier: MIT

package state

import "path/filepath"

// The files of the state directory that other packages read and write
// are named here, beside TokenFile and UsageFile, so that no other
// package builds a path in it.

// ScopedTokensFile holds the tokens exec --key, --tag and --label
// obtained, by their hash, never as themselves.
func ScopedTokensFile(stateDir string) string { return filepath.Join(stateDir, "tokens.json") }

// DisabledFile holds the keys disabled by hand, so that they stay
// disabled across restarts: by PROVIDER/NAME, with no secret.
func DisabledFile(stateDir string) string { return filepath.Join(stateDir, "disabled.json") }

// LaunchdLogFile is where the launchd agent sends the daemon's standard
// error.
func LaunchdLogFile(stateDir string) string { return filepath.Join(stateDir, "launchd.log") }

// SetupRecordFile is what setup changed in a tool's configuration, for
// setup --undo.
func SetupRecordFile(stateDir, tool string) string {
	return filepath.Join(stateDir, "setup", tool+".json")
}
