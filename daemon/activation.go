package daemon

import (
	"fmt"
	"net"

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
