// SPDX-License-Identifier: MIT

package cli

import "golang.org/x/sys/unix"

// The termios requests, as golang.org/x/term uses them on each OS.
const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
)
