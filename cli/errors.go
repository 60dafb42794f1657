// SPDX-License-Identifier: MIT

package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// Exit codes, decided once. The README and the man page print this table.
const (
	ExitOK         = 0
	ExitFailure    = 1 // the command failed; for status: running but degraded
	ExitUsage      = 2 // bad command line
	ExitNotRunning = 3 // the daemon is not running (status, and commands that must not start it)
	ExitKeyfile    = 4 // the keyfile is missing, unsafe (permissions, owner) or invalid
	// test: the worst of the keys tested
	ExitKeyInvalid     = 10
	ExitKeyQuota       = 11
	ExitKeyRateLimited = 12
	ExitKeyUnreachable = 13
	// exec's own failures, as env(1) and shells report them
	ExitCommandCannotRun = 126
	ExitCommandNotFound  = 127
	ExitInterrupted      = 130
)

// ExitCodeDoc describes each exit code for the man page and the README.
var ExitCodeDoc = []struct {
	Code    int
	Meaning string
}{
	{ExitOK, "success; for status: the daemon runs and nothing waits on you (every provider has a usable key, no key needs you)"},
	{ExitFailure, "the command failed; for status: the daemon runs but is degraded (a provider with no usable key, a key that needs you, a keyfile error, state not persisted, another version)"},
	{ExitUsage, "the command line is wrong: unknown command or flag, missing or extra arguments"},
	{ExitNotRunning, "the daemon is not running (status never starts it)"},
	{ExitKeyfile, "the keyfile is missing, readable by others, owned by someone else, or invalid; the message names the line"},
	{ExitKeyInvalid, "test: a key is invalid (the provider refuses it); add --check: the key was not added"},
	{ExitKeyQuota, "test: a key is out of quota or credit"},
	{ExitKeyRateLimited, "test: a key is rate limited now"},
	{ExitKeyUnreachable, "test: the provider could not be reached"},
	{ExitCommandCannotRun, "exec: the command was found but could not be run"},
	{ExitCommandNotFound, "exec: the command was not found"},
	{ExitInterrupted, "interrupted at a prompt (Ctrl-C)"},
}

// hinter is any error that knows how to fix itself.
type hinter interface{ HintText() string }

// Error is an error of the CLI's own with a hint and an exit code.
type Error struct {
	Err  error
	Hint string
	Code int
}

func (e *Error) Error() string    { return e.Err.Error() }
func (e *Error) Unwrap() error    { return e.Err }
func (e *Error) HintText() string { return e.Hint }

func fail(hint, format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...), Hint: hint, Code: ExitFailure}
}

func usageError(hint, format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...), Hint: hint, Code: ExitUsage}
}

// ExitCode maps any error a command returns to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) && e.Code != 0 {
		return e.Code
	}
	if errors.Is(err, control.ErrNotRunning) {
		return ExitNotRunning
	}
	var se *control.StartError
	if errors.As(err, &se) && se.Keyfile {
		return ExitKeyfile
	}
	var ke *state.KeyfileError
	if pe := (*state.PathError)(nil); errors.As(err, &pe) {
		if pe.Keyfile {
			return ExitKeyfile
		}
		return ExitFailure
	}
	if errors.As(err, &ke) || errors.Is(err, fs.ErrNotExist) {
		return ExitKeyfile
	}
	return ExitFailure
}

// PrintError writes err the way every llmkey error looks: "llmkey: " and
// the message in lower case, then a "hint:" line that says what to do.
func PrintError(w io.Writer, err error) {
	msg := err.Error()
	if msg == "" { // the command has said it all already
		return
	}
	fmt.Fprintf(w, "llmkey: %s\n", msg)
	hint := ""
	var h hinter
	if errors.As(err, &h) {
		hint = h.HintText()
	}
	if hint == "" && errors.Is(err, fs.ErrNotExist) && strings.Contains(msg, "keyfile") {
		hint = "add a key first: printf %s \"$KEY\" | llmkey add PROVIDER NAME"
	}
	if hint != "" {
		fmt.Fprintf(w, "hint: %s\n", hint)
	}
}
