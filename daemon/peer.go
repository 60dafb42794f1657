package daemon

import (
	"log/slog"
	"net"

	"github.com/llmkey/llmkey/daemon/control"
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
		uid, err := control.PeerUID(c)
		if err == nil && uid == l.uid {
			return c, nil
		}
		l.log.Warn("refused a control connection from another user", "peer_uid", uid, "err", err)
		c.Close()
	}
}
