// SPDX-License-Identifier: MIT

package control

import "golang.org/x/sys/unix"

// peerCredUID reads LOCAL_PEERCRED (what getpeereid(3) reads): the
// credentials of the peer when it connected.
func peerCredUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
