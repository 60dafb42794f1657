// SPDX-License-Identifier: MIT

package daemon

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// peerPID reads LOCAL_PEERPID: the pid of the peer when it connected.
func peerPID(fd int) (int, error) {
	return unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
}

// procStart says when process pid started (kern.proc.pid's p_starttime,
// to the microsecond): with the pid, it names one process for good. As
// on Linux, a zombie counts until it is reaped.
func procStart(pid int) (string, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if errors.Is(err, unix.EIO) || errors.Is(err, unix.ESRCH) {
		return "", errProcGone // the sysctl answers nothing for a pid no process has
	}
	if err != nil {
		return "", err
	}
	if int(kp.Proc.P_pid) != pid {
		return "", errProcGone
	}
	t := kp.Proc.P_starttime
	return fmt.Sprintf("%d.%06d", t.Sec, t.Usec), nil
}
