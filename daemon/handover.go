// SPDX-License-Identifier: MIT

package daemon

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
)

// A restart hands the proxy's port on from one daemon to the next: the
// port is never let go, so that no other user can take it in between
// and have the tools already pointed at it send their prompts and token
// there (on Linux another uid cannot share a bound port). The CLI asks
// for the listening socket (POST /v1/handover, the socket passed back
// as SCM_RIGHTS on the control connection), starts the next daemon with
// it, waiting for this one's lock, and stops this one with
// POST /v1/stop?handover=1. This one then takes no more connections;
// they wait in the port's queue until the next one, once this one has
// drained and exited, serves them.

// serveHandover answers with the proxy's listening socket attached.
func (d *Daemon) serveHandover(w http.ResponseWriter, r *http.Request) {
	if d.runtime.handedOver {
		writeJSON(w, http.StatusConflict, control.APIError{Msg: "the port is the socket unit's, which keeps it from one daemon to the next",
			Hint: "llmkey restart stops this daemon and the socket starts the next"})
		return
	}
	sc, ok := d.proxyLn.(syscall.Conn)
	hj, ok2 := w.(http.Hijacker)
	if !ok || !ok2 {
		writeJSON(w, http.StatusNotImplemented, control.APIError{Msg: "this daemon cannot hand its port on", Hint: "llmkey stop, then llmkey start"})
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	rc, err := sc.SyscallConn()
	if !ok || err != nil {
		return
	}
	body, _ := json.Marshal(control.HandOver{Proxy: d.proxyLn.Addr().String(), PID: os.Getpid()})
	msg := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	uc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	var werr error
	// Control, not File: a file's Fd would put the socket, shared with
	// this daemon's own listener, in blocking mode.
	if cerr := rc.Control(func(fd uintptr) { _, _, werr = uc.WriteMsgUnix(msg, syscall.UnixRights(int(fd)), nil) }); cerr != nil {
		werr = cerr
	}
	if werr != nil {
		d.log.Warn("could not hand the proxy's port on", "err", werr)
		return
	}
	d.log.Info("handed the proxy's port on, for the next daemon", "port", d.proxyLn.Addr().String())
}

// handOverPort stops taking connections on the proxy's port, which the
// next daemon holds too: new ones wait in its queue for that daemon
// instead of being refused with "draining". Each connection already
// taken has its requests served (the one it may have sent a moment ago
// too, which the server's Shutdown would drop) and is closed after its
// answer, for up to timeout; it returns the time left of it.
func (d *Daemon) handOverPort(s *serving, timeout time.Duration) time.Duration {
	d.log.Info("draining; the next daemon holds the port and takes the new connections", "port", d.proxyLn.Addr().String())
	deadline := time.Now().Add(timeout)
	s.proxyLn.Close()
	select { // a connection it took just now is counted by then
	case <-s.accepting:
	case <-time.After(timeout):
	}
	for {
		// Again each time: closes the connections that went idle since.
		s.proxy.SetKeepAlivesEnabled(false)
		if s.open.Load() <= 0 || !time.Now().Before(deadline) {
			return max(time.Until(deadline), 0)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
