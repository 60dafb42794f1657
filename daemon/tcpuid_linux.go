package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
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

	// struct nlmsghdr, then struct inet_diag_req_v2 with its
	// inet_diag_sockid: ports and addresses in network order.
	req := make([]byte, 16+56)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence
	r := req[16:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], ^uint32(0)) // every state
	binary.BigEndian.PutUint16(r[8:], uint16(remote.Port))
	binary.BigEndian.PutUint16(r[10:], uint16(local.Port))
	copy(r[12:28], src)
	copy(r[28:44], dst)
	ne.PutUint32(r[48:], ^uint32(0)) // no cookie
	ne.PutUint32(r[52:], ^uint32(0))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return -1, fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 512)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return -1, fmt.Errorf("netlink receive: %w", err)
	}
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
