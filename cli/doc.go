// Package cli is llmkey's command line: one file per command, each with an
// XxxCommandInput struct, a ConfigureXxxCommand that binds its flags, and
// an XxxCommand function that does the work. Terminal rules (prompts,
// secrets, error style) and exit codes are decided once, in term.go and
// errors.go.
package cli
