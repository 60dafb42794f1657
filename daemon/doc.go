// SPDX-License-Identifier: MIT

// Package daemon is the long-running process: it takes the daemon lock
// and binds the proxy port and the control socket (checking each
// peer's uid), loads and watches the keyfile and publishes what it says
// to the request path, serves the control API, keeps the state dir and the
// runtime dir in step with its memory (usage, the token, keys disabled by
// hand, the lock and the socket), writes its log off the request path,
// serves metrics, and drains on stop.
//
// It composes parts that live in packages of their own: the request path
// (proxy), the wire formats (wire), the control API's contract and client
// (control), and the keys' live state (rotate). It reads one clock.
package daemon
