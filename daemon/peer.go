// SPDX-License-Identifier: MIT

package daemon

import (
	"log/slog"
	"net"
	"sync/atomic"
	"time"

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

// ownTCPListener accepts only loopback connections from processes of our
// own uid, where the system can tell (Linux): another user's connections
// are closed at once, so that they never pile up to the daemon's file
// limit while the user's own requests wait. Where it cannot tell, it
// accepts and says so once.
type ownTCPListener struct {
	net.Listener
	uid     int
	log     *slog.Logger
	refused atomic.Int64
	warned  atomic.Bool
	logged  atomic.Int64 // unix seconds of the last line about refusals
}

func (l *ownTCPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := tcpPeerUID(c)
		if err != nil {
			if !l.warned.Swap(true) {
				l.log.Warn("cannot tell which user a proxy connection comes from; other users' connections are not refused", "err", err)
			}
			return c, nil
		}
		if uid == l.uid {
			return c, nil
		}
		c.Close()
		n := l.refused.Add(1)
		if now := time.Now().Unix(); now-l.logged.Load() >= 60 {
			l.logged.Store(now)
			l.log.Warn("refused proxy connections from another user", "peer_uid", uid, "refused_so_far", n)
		}
	}
}
