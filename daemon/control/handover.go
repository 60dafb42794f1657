// SPDX-License-Identifier: MIT

package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/llmkey/llmkey/state"
)

// HandOver is the daemon's answer to POST /v1/handover, which carries
// the proxy's listening socket (SCM_RIGHTS) for the daemon that takes
// over from it.
type HandOver struct {
	Proxy string `json:"proxy"` // the port's address
	PID   int    `json:"pid"`   // the daemon that handed it on
}

// ErrNoHandOver means the running daemon cannot hand its port on (a
// version from before it could); nothing was stopped.
var ErrNoHandOver = errors.New("the running daemon cannot hand its port on to the next one")

// Restart starts the next daemon on the running one's proxy port,
// which is never let go: the next one holds the port and waits for the
// running one's lock, and only then is the running one stopped
// (POST /v1/stop?handover=1); waitStopped waits for its exit. The next
// one then serves the connections that waited in the port's queue. It
// holds the spawn lock throughout, so that a command that finds no
// daemon in between waits for this one's instead of starting its own.
func Restart(ctx context.Context, paths state.Paths, exe string, waitStopped func() error) (*HandOver, error) {
	lock, err := spawnLock(paths)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	ho, ln, err := NewClient(paths).handOver(ctx)
	if err != nil {
		return nil, err
	}
	dp, err := startDaemon(paths, exe, ln)
	ln.Close()
	if err != nil {
		return nil, err
	}
	line, err := dp.say(StartTimeout)
	if err == nil && line == "waiting" {
		if err := NewClient(paths).StopHandingOver(ctx); err != nil && !errors.Is(err, ErrNotRunning) {
			dp.cmd.Process.Signal(syscall.SIGTERM) // it was waiting: it exits without serving
			return nil, err
		}
		// Should the running one outlast the wait, the next one still
		// serves once it exits: the port the running one no longer
		// takes connections on is the next one's alone.
		if err := waitStopped(); err != nil {
			return nil, err
		}
		line, err = dp.say(StartTimeout)
	}
	return ho, dp.result(line, err)
}

// StopHandingOver asks the daemon to drain and exit, taking no more
// connections on the proxy's port: the next daemon holds it already.
func (c *Client) StopHandingOver(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/stop?handover=1", nil)
}

// handOver asks the daemon for its proxy's listening socket.
func (c *Client) handOver(ctx context.Context) (*HandOver, *os.File, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	conn, err := dialDaemon(ctx, c.paths.RuntimeDir, c.paths.SocketPath())
	if notRunning(err) {
		return nil, nil, ErrNotRunning
	} else if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, nil, ErrNoHandOver
	}
	deadline, _ := ctx.Deadline()
	uc.SetDeadline(deadline)
	req, _ := http.NewRequest(http.MethodPost, "http://llmkey/v1/handover", nil)
	req.Close = true
	if err := req.Write(uc); err != nil {
		return nil, nil, fmt.Errorf("talk to the daemon: %w", err)
	}
	// The socket comes with the answer's first bytes.
	buf, oob := make([]byte, 4096), make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, fmt.Errorf("talk to the daemon: %w", err)
	}
	files := receivedFiles(oob[:oobn])
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(buf[:n]), uc)), req)
	if err == nil && resp.StatusCode == http.StatusOK && len(files) == 1 {
		var ho HandOver
		if err = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&ho); err == nil {
			return &ho, files[0], nil
		}
	}
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the daemon's answer to /v1/handover: %w", err)
	}
	return nil, nil, ErrNoHandOver
}

// receivedFiles are the descriptors passed in a control message.
func receivedFiles(oob []byte) []*os.File {
	msgs, _ := syscall.ParseSocketControlMessage(oob)
	var files []*os.File
	for _, m := range msgs {
		fds, _ := syscall.ParseUnixRights(&m)
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "proxy socket"))
		}
	}
	return files
}

// WriteWaiting is the next daemon's word that it holds the port and
// waits for the running one to exit.
func WriteWaiting(f *os.File) {
	f.WriteString("waiting\n")
}
