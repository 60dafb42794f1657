// SPDX-License-Identifier: MIT

package daemon

import (
	"errors"
	"net"
)

// tcpPeerUID: macOS does not tell the owner of a loopback TCP peer
// without privileges; the proxy then relies on its idle and header
// timeouts alone.
func tcpPeerUID(net.Conn) (int, error) { return -1, errUIDUnknown }

var errUIDUnknown = errors.New("the uid of a TCP peer is not known on this system")

// portHolderUID: macOS does not tell an unprivileged process who holds
// a port; errors then name no one.
func portHolderUID(string) (int, error) { return -1, errUIDUnknown }
