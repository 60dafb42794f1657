// SPDX-License-Identifier: MIT

// Command llmkey keeps several LLM API keys per provider and rotates them
// behind a local proxy. This file only wires the app: it builds the
// command tree, runs it, and maps errors to exit codes.
package main

import (
	"os"

	"github.com/llmkey/llmkey/cli"
)

func main() {
	app := cli.NewApp()
	if err := app.Run(cli.PermuteArgs(app, os.Args)); err != nil {
		cli.PrintError(os.Stderr, err)
		os.Exit(cli.ExitCode(err))
	}
}
