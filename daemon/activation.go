// SPDX-License-Identifier: MIT

package daemon

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
)

// Socket activation: systemd (a .socket unit) or systemd-socket-activate
// opens the proxy's port and the control socket, and starts the daemon
// on the first connection to either, handing both over (LISTEN_FDS). The
// daemon then serves them instead of opening its own: the first request
// waits in the kernel's queue, not refused, and a CLI that connects to
// the control socket meanwhile finds the daemon it woke, never starting
// a second one. go-systemd's activation reads the handed-over sockets
// (and clears LISTEN_* so that no child inherits them); without them it
// returns none and the daemon listens as usual.
type handedOver struct{ proxy, control net.Listener }

func socketsHandedOver(controlSocket string) (handedOver, error) {
	var h handedOver
	lns, err := activation.Listeners()
	if err != nil {
		return h, fmt.Errorf("read the sockets handed over (LISTEN_FDS): %w", err)
	}
	for _, ln := range lns {
		if ln == nil {
			continue // not a stream socket
		}
		switch a := ln.Addr().(type) {
		case *net.TCPAddr:
			if !a.IP.IsLoopback() || h.proxy != nil {
				h.close()
				ln.Close()
				return handedOver{}, fmt.Errorf("the port handed over is %s: hand over one loopback port (ListenStream=127.0.0.1:PORT)", a)
			}
			h.proxy = ln
		case *net.UnixAddr:
			if a.Name != controlSocket || h.control != nil {
				h.close()
				ln.Close()
				return handedOver{}, fmt.Errorf("the UNIX socket handed over is %s: it must be the control socket, %s", a.Name, controlSocket)
			}
			h.control = ln
		default:
			ln.Close()
		}
	}
	return h, nil
}

func (h handedOver) close() {
	for _, ln := range []net.Listener{h.proxy, h.control} {
		if ln != nil {
			ln.Close()
		}
	}
}

// inheritedListener is the proxy's listening socket as the daemon this
// one takes over from handed it on (llmkey restart passes it as an extra
// file at fd): the port stays bound from one daemon to the next, and
// connections wait in its queue meanwhile. It must be read before the
// daemon runs any command (a secret_cmd), which would inherit the fd
// otherwise, and with it the port.
func inheritedListener(fd int) (net.Listener, error) {
	if fd <= 0 {
		return nil, nil
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "inherited proxy socket")
	defer f.Close() // FileListener made a copy of its own
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("read the proxy socket handed on (fd %d): %w", fd, err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("the socket handed on (fd %d) is %s, not a loopback port", fd, ln.Addr())
	}
	return ln, nil
}

// sameListen reports whether a listener on addr serves the keyfile's
// [daemon] listen: the same address, or any port of its host when it
// asks for a free one (port 0).
func sameListen(addr net.Addr, listen string) bool {
	got, ok := addr.(*net.TCPAddr)
	want, err := net.ResolveTCPAddr("tcp", listen)
	if !ok || err != nil || !got.IP.Equal(want.IP) {
		return false
	}
	return want.Port == 0 || want.Port == got.Port
}
