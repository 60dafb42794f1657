// SPDX-License-Identifier: MIT

package control

import (
	"net"

	"golang.org/x/sys/unix"
)

// PeerUID is the uid of the process at the other end of a UNIX socket
// connection, as the kernel tells it (peerCredUID, per OS). The daemon
// checks its clients with it, and the CLI the daemon.
func PeerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, unix.EINVAL
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid, credErr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { uid, credErr = peerCredUID(int(fd)) }); err != nil {
		return -1, err
	}
	return uid, credErr
}
