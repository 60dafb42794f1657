// SPDX-License-Identifier: MIT

// Package control is the contract between the CLI and the daemon: the
// control API's requests and answers (HTTP with JSON bodies over the UNIX
// socket, versioned paths), the Go client for it, and how a CLI starts a
// daemon and learns that it is ready or why it could not start. The CLI
// talks to a daemon only through this package. One binary is both, as
// mutagen's is: the CLI imports the server's package (daemon) too, for
// the one command that runs it, "llmkey daemon".
package control
