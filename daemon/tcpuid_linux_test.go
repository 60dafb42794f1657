package daemon

import (
	"net"
	"os"
	"testing"
)

// The kernel names the owner of a loopback TCP peer: us, for our own
// connection, on IPv4 and IPv6.
func TestTCPPeerUID(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v", addr, err)
			continue
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		uid, err := tcpPeerUID(s)
		if err != nil || uid != os.Getuid() {
			t.Errorf("%s: uid %d %v, want %d", addr, uid, err, os.Getuid())
		}
		c.Close()
		s.Close()
		ln.Close()
	}
}
