// SPDX-License-Identifier: MIT

package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerPID reads SO_PEERCRED: the pid of the peer when it connected.
func peerPID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, err
	}
	return int(cred.Pid), nil
}

// bootID tells this boot from the others: a start time counts clock
// ticks from the boot.
var bootID = sync.OnceValue(func() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
})

// procStart says when process pid started (the boot, and the 22nd field
// of /proc/PID/stat): with the pid, it names one process for good.
func procStart(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return "", errProcGone
	}
	if err != nil {
		return "", err
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	var f []string
	if i >= 0 {
		f = strings.Fields(string(b[i+1:]))
	}
	// A zombie (state Z) still counts: exec from a thread other than the
	// first (Go's syscall.Exec, often) leaves the first a zombie under
	// the same pid for a moment, and the new program then takes its
	// place and its start time. A process is gone once it is reaped.
	if len(f) < 20 {
		return "", fmt.Errorf("read /proc/%d/stat: unexpected %q", pid, b)
	}
	return bootID() + ":" + f[19], nil
}
