// SPDX-License-Identifier: MIT

package daemon

import "golang.org/x/sys/unix"

// harden keeps debuggers of the same user out of the daemon's memory,
// where the keys are (PT_DENY_ATTACH, as ssh-agent does on macOS).
func harden() error { return unix.PtraceDenyAttach() }
