// SPDX-License-Identifier: MIT

// Package cli is llmkey's command line: one file per command, each with an
// XxxCommandInput struct, a ConfigureXxxCommand that binds its flags, and
// an XxxCommand function that takes the input and its Streams and does
// the work, so that it can be run in-process. Terminal rules (prompts,
// secrets, error style) and exit codes are decided once, in term.go and
// errors.go. It talks to the daemon through the control package only.
package cli
