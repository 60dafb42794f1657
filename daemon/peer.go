package daemon

import (
	"log/slog"
	"net"

	"golang.org/x/sys/unix"
)

// peerListener accepts only connections from processes of our own uid.
// The runtime directory is 0700 already; this is the second wall, for the
// day someone loosens that directory (after tailscale's safesocket).
type peerListener struct {
	net.Listener
	uid int
	log *slog.Logger
}

func (l peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && uid == l.uid {
			return c, nil
		}
		l.log.Warn("refused a control connection from another user", "peer_uid", uid, "err", err)
		c.Close()
	}
}

// peerUID is the uid of the process at the other end of a UNIX socket
// connection, as the kernel tells it (peerCredUID, per OS).
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, unix.EINVAL
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid, credErr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { uid, credErr = peerCredUID(int(fd)) }); err != nil {
		return -1, err
	}
	return uid, credErr
}
