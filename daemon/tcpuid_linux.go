package daemon

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpPeerUID is the uid that owns the other end of a loopback TCP
// connection: the kernel's inet_diag (NETLINK_SOCK_DIAG, as ss(8) asks
// it) looks up the client's socket by its address and port, ours being
// its destination.
func tcpPeerUID(c net.Conn) (int, error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return -1, errors.New("not a TCP connection")
	}
	family, src, dst := uint8(unix.AF_INET), remote.IP.To4(), local.IP.To4()
	if src == nil || dst == nil {
		family, src, dst = unix.AF_INET6, remote.IP.To16(), local.IP.To16()
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("netlink: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 1}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Sendto(fd, diagRequest(family, remote.Port, local.Port, src, dst), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return -1, fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 512)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return -1, fmt.Errorf("netlink receive: %w", err)
	}
	return diagUID(buf[:n])
}

// diagRequest asks inet_diag for one TCP socket: struct nlmsghdr, then
// struct inet_diag_req_v2 with its inet_diag_sockid (ports and addresses
// in network order).
func diagRequest(family uint8, srcPort, dstPort int, src, dst net.IP) []byte {
	req := make([]byte, 16+56)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence
	r := req[16:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], ^uint32(0)) // every state
	binary.BigEndian.PutUint16(r[8:], uint16(srcPort))
	binary.BigEndian.PutUint16(r[10:], uint16(dstPort))
	copy(r[12:28], src)
	copy(r[28:44], dst)
	ne.PutUint32(r[48:], ^uint32(0)) // no cookie
	ne.PutUint32(r[52:], ^uint32(0))
	return req
}

// diagUID reads the uid from inet_diag's answer.
func diagUID(buf []byte) (int, error) {
	ne := binary.NativeEndian
	n := len(buf)
	if n < 16 {
		return -1, errors.New("netlink: short answer")
	}
	switch ne.Uint16(buf[4:]) {
	case unix.NLMSG_ERROR:
		if n >= 20 {
			if e := int32(ne.Uint32(buf[16:])); e != 0 {
				return -1, fmt.Errorf("inet_diag: %w", syscall.Errno(-e))
			}
		}
		return -1, errors.New("inet_diag: error")
	case unix.SOCK_DIAG_BY_FAMILY:
		// struct inet_diag_msg: family, state, timer, retrans, the
		// sockid (48 bytes), expires, rqueue, wqueue, uid, inode.
		if n < 16+72 {
			return -1, errors.New("inet_diag: short answer")
		}
		return int(ne.Uint32(buf[16+64:])), nil
	}
	return -1, fmt.Errorf("netlink: answer of type %d", ne.Uint16(buf[4:]))
}

// portHolderUID is the uid that owns the socket bound to listen's
// address and port, the listening one first: the kernel's table of TCP
// sockets (/proc/net/tcp and tcp6, which every user may read) names it.
// A socket on the wildcard address of its family holds the port too.
func portHolderUID(listen string) (int, error) {
	want, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return -1, err
	}
	if want.Port == 0 {
		return -1, errors.New("a free port is picked at each start: no one holds it")
	}
	found := -1
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			uid, listening, ok := tcpTableHolder(line, want)
			switch {
			case ok && listening:
				return uid, nil
			case ok && found < 0:
				found = uid
			}
		}
	}
	if found < 0 {
		return -1, errors.New("no socket holds that port")
	}
	return found, nil
}

// tcpTableHolder reads one line of /proc/net/tcp: whether its socket is
// bound to want's port on want's address (or the wildcard), its uid,
// and whether it listens. Addresses are written as the kernel holds
// them, each 32-bit word in the machine's byte order.
func tcpTableHolder(line string, want *net.TCPAddr) (uid int, listening, ok bool) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return -1, false, false
	}
	hexAddr, hexPort, _ := strings.Cut(f[1], ":")
	port, err1 := strconv.ParseUint(hexPort, 16, 16)
	raw, err2 := hex.DecodeString(hexAddr)
	uid, err3 := strconv.Atoi(f[7])
	if err1 != nil || err2 != nil || err3 != nil || int(port) != want.Port || len(raw)%4 != 0 {
		return -1, false, false
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	if !ip.Equal(want.IP) && !ip.IsUnspecified() {
		return -1, false, false
	}
	if f[3] == "06" { // TCP_TIME_WAIT: no process holds it, and it does not keep a listener out
		return -1, false, false
	}
	return uid, f[3] == "0A", true // TCP_LISTEN
}
