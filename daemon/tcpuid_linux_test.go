// SPDX-License-Identifier: MIT

package daemon

import (
	"encoding/binary"
	"fmt"
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

// The kernel's table of TCP sockets names who holds a port: us, for a
// port we listen on, on IPv4 and IPv6; no one for a free port.
func TestPortHolderUID(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v", addr, err)
			continue
		}
		held := ln.Addr().String()
		if uid, err := portHolderUID(held); err != nil || uid != os.Getuid() {
			t.Errorf("%s: uid %d %v, want %d", held, uid, err, os.Getuid())
		}
		ln.Close()
		if uid, err := portHolderUID(held); err == nil {
			t.Errorf("%s, closed: held by uid %d", held, uid)
		}
	}
}

// A line of /proc/net/tcp or tcp6 holds the port asked about when its
// local port is that one, on the address asked about or the wildcard;
// a socket in TIME_WAIT holds nothing.
func TestTCPTableHolder(t *testing.T) {
	want := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5565}
	want6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 5565}
	v4 := func(ip net.IP) string { // as the kernel writes it: the address's 32-bit word in host order
		return fmt.Sprintf("%08X", binary.NativeEndian.Uint32(ip.To4()))
	}
	v6 := func(ip net.IP) string {
		var s string
		for i := 0; i < 16; i += 4 {
			s += fmt.Sprintf("%08X", binary.NativeEndian.Uint32(ip[i:i+4]))
		}
		return s
	}
	line := func(addr string, port int, st string, uid int) string {
		return fmt.Sprintf("   0: %s:%04X 00000000:0000 %s 00000000:00000000 00:00000000 00000000  %d        0 12345 1", addr, port, st, uid)
	}
	for _, c := range []struct {
		line          string
		want          *net.TCPAddr
		uid           int
		listening, ok bool
	}{
		{line(v4(want.IP), 5565, "0A", 1001), want, 1001, true, true},
		{line(v4(net.IPv4zero), 5565, "0A", 1002), want, 1002, true, true},
		{line(v4(want.IP), 5565, "01", 1003), want, 1003, false, true},
		{line(v4(want.IP), 5565, "06", 0), want, -1, false, false},
		{line(v4(want.IP), 5566, "0A", 1001), want, -1, false, false},
		{line(v4(net.IPv4(127, 0, 0, 2)), 5565, "0A", 1001), want, -1, false, false},
		{line(v6(net.IPv6loopback), 5565, "0A", 1004), want6, 1004, true, true},
		{line(v6(net.IPv6unspecified), 5565, "0A", 1005), want, 1005, true, true},
		{"  sl  local_address rem_address   st tx_queue", want, -1, false, false},
	} {
		uid, listening, ok := tcpTableHolder(c.line, c.want)
		if uid != c.uid || listening != c.listening || ok != c.ok {
			t.Errorf("%q for %s: %d %v %v, want %d %v %v", c.line, c.want, uid, listening, ok, c.uid, c.listening, c.ok)
		}
	}
}
