// SPDX-License-Identifier: MIT

package control

import "golang.org/x/sys/unix"

// peerCredUID reads SO_PEERCRED: the credentials of the peer when it
// connected.
func peerCredUID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
