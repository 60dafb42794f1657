// SPDX-License-Identifier: MIT

package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// errProcGone: no process has that pid (any more: one that has exited
// is gone once its parent has reaped it).
var errProcGone = errors.New("no such process")

// connKey holds, in a control request's context, the connection it came
// on: the kernel says which process is at its other end.
type connKey struct{}

// withConn is the control server's ConnContext.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// callerPID is the pid of the process that connected to send r, as the
// kernel tells it (so right even when that process sees other pids, in
// a pid namespace of its own); 0 when unknown.
func callerPID(r *http.Request) int {
	uc, ok := r.Context().Value(connKey{}).(*net.UnixConn)
	if !ok {
		return 0
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	raw.Control(func(fd uintptr) { pid, _ = peerPID(int(fd)) })
	return pid
}
