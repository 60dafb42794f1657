// SPDX-License-Identifier: MIT

package daemon

import "golang.org/x/sys/unix"

// harden keeps other processes of the same user out of the daemon's
// memory, where the keys are: not dumpable means no ptrace attach, no
// core dump and /proc/PID/mem, environ and maps readable by root only (as
// ssh-agent does).
func harden() error { return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }
