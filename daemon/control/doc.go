// SPDX-License-Identifier: MIT

// Package control is the contract between the CLI and the daemon: the
// control API's requests and answers (HTTP with JSON bodies over the UNIX
// socket, versioned paths), the Go client for it, and how a CLI starts a
// daemon and learns that it is ready or why it could not start. The CLI
// imports this package, never the server's.
package control
