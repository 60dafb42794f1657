// Package daemon will own the long-running process: spawn, lock and
// socket, the proxy handler, the control API, the keyfile watcher and
// drain. It is empty until the daemon lands (issue 3); the CLI reports
// "daemon not running" meanwhile.
package daemon
