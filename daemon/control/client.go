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
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/llmkey/llmkey/state"
)

// dialDaemon connects to the daemon's socket, trusting only a runtime
// dir of our own that no one else may enter, and a daemon of our own uid
// (peer credentials): anyone else's socket there would take our tools'
// traffic, with a token and proxy URL of its choosing.
func dialDaemon(ctx context.Context, runtimeDir, sock string) (net.Conn, error) {
	if err := checkRuntimeDir(runtimeDir); err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	uid, err := PeerUID(conn)
	if err != nil || uid != os.Getuid() {
		conn.Close()
		return nil, &UntrustedError{Path: sock, Problem: fmt.Sprintf("is served by uid %d, not by you (uid %d)", uid, os.Getuid())}
	}
	return conn, nil
}

// checkRuntimeDir refuses a runtime dir that is not a directory of ours
// with mode 0700; a missing one is no daemon.
func checkRuntimeDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // no daemon there; the dial says why, with its hint
	}
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &UntrustedError{Path: dir, Problem: "is a symbolic link"}
	case !fi.IsDir():
		return nil // the dial says "not a directory", with its own hint
	case ok && int(st.Uid) != os.Getuid():
		return &UntrustedError{Path: dir, Problem: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", st.Uid, os.Getuid())}
	case fi.Mode().Perm()&0o077 != 0:
		return &UntrustedError{Path: dir, Problem: fmt.Sprintf("may be entered by other users (mode %04o)", fi.Mode().Perm()), own: true}
	}
	return nil
}

// UntrustedError is a runtime dir or socket the CLI will not use: someone
// else could have made it, to catch the traffic of the user's tools.
type UntrustedError struct {
	Path, Problem string
	own           bool // ours, with a mode too open
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("refusing the daemon's runtime dir: %s %s", e.Path, e.Problem)
}

func (e *UntrustedError) HintText() string {
	if e.own {
		return "chmod 700 " + e.Path
	}
	return "another user may have made it to catch your tools' traffic: remove it, or set LLMKEY_RUNTIME_DIR (or XDG_RUNTIME_DIR) to a directory of yours"
}

// ErrNotRunning means no daemon answers on the socket.
var ErrNotRunning = errors.New("the llmkey daemon is not running")

// Client talks to the daemon over its control socket.
type Client struct {
	paths state.Paths
}

// UnreachableError is a control socket that can be neither reached nor
// told apart from no daemon: a runtime dir that is not a directory, or
// one we may not enter.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	var oe *net.OpError
	err := e.Err
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return fmt.Sprintf("cannot reach the daemon's socket %s: %v", e.Socket, err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }
func (e *UnreachableError) HintText() string {
	return fmt.Sprintf("the runtime dir %s must be a directory of yours: move whatever is there out of the way, or set LLMKEY_RUNTIME_DIR to another directory", filepath.Dir(e.Socket))
}

// NewClient makes a client for the daemon of paths. It does not connect.
func NewClient(paths state.Paths) *Client { return &Client{paths: paths} }

// callTimeout bounds one call to the daemon.
const callTimeout = 10 * time.Second

// Status asks the daemon for its status; ErrNotRunning if none answers.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.do(ctx, http.MethodGet, "/v1/status", &st)
}

// Env asks for what exec and env need.
func (c *Client) Env(ctx context.Context) (*Env, error) {
	var e Env
	return &e, c.do(ctx, http.MethodGet, "/v1/env", &e)
}

// Usage asks for the daemon's usage counts.
func (c *Client) Usage(ctx context.Context) (*UsageReport, error) {
	var u UsageReport
	return &u, c.do(ctx, http.MethodGet, "/v1/usage", &u)
}

// History asks for each key's last hour, minute by minute.
func (c *Client) History(ctx context.Context) (*History, error) {
	var h History
	return &h, c.do(ctx, http.MethodGet, "/v1/history", &h)
}

// Reload makes the daemon re-read the keyfile now.
func (c *Client) Reload(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.do(ctx, http.MethodPost, "/v1/reload", &st)
}

// Stop asks the daemon to drain and exit; it returns at once.
func (c *Client) Stop(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/stop", nil)
}

// KeyAction enables, disables (for dur; 0: until enabled) or resets one
// key, and returns its state after.
func (c *Client) KeyAction(ctx context.Context, provider, name, action string, dur time.Duration) (*KeyStatus, error) {
	var body io.Reader
	if dur > 0 {
		b, _ := json.Marshal(map[string]string{"for": dur.String()})
		body = bytes.NewReader(b)
	}
	var ks KeyStatus
	return &ks, c.doBody(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(provider)+"/"+url.PathEscape(name)+"/"+action, body, &ks)
}

// KeyChecked tells the daemon what a check of the key found, and
// returns its state after.
func (c *Client) KeyChecked(ctx context.Context, provider, name string, chk KeyCheck) (*KeyStatus, error) {
	b, _ := json.Marshal(chk)
	var ks KeyStatus
	return &ks, c.doBody(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(provider)+"/"+url.PathEscape(name)+"/checked", bytes.NewReader(b), &ks)
}

// AnnounceRename tells the daemon that the key is about to be renamed to
// to in the keyfile: the load that serves the new name carries the key's
// state, usage and scoped tokens over.
func (c *Client) AnnounceRename(ctx context.Context, provider, name, to string) error {
	b, _ := json.Marshal(RenameRequest{To: to})
	return c.doBody(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(provider)+"/"+url.PathEscape(name)+"/rename", bytes.NewReader(b), nil)
}

// IssueToken asks the daemon for a scoped token.
func (c *Client) IssueToken(ctx context.Context, req TokenRequest) (*Token, error) {
	b, _ := json.Marshal(req)
	var t Token
	return &t, c.doBody(ctx, http.MethodPost, "/v1/tokens", bytes.NewReader(b), &t)
}

// Tokens lists the scoped tokens.
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	var out []TokenInfo
	return out, c.do(ctx, http.MethodGet, "/v1/tokens", &out)
}

// RevokeToken ends a scoped token by its id (or a prefix of six or more
// characters that names one).
func (c *Client) RevokeToken(ctx context.Context, id string) (*TokenChange, error) {
	var ch TokenChange
	return &ch, c.do(ctx, http.MethodPost, "/v1/tokens/"+url.PathEscape(id)+"/revoke", &ch)
}

// PruneTokens removes the scoped tokens that are no longer live; with
// dryRun it only says which it would remove.
func (c *Client) PruneTokens(ctx context.Context, dryRun bool) (*TokenChange, error) {
	path := "/v1/tokens/prune"
	if dryRun {
		path += "?dry_run=1"
	}
	var ch TokenChange
	return &ch, c.do(ctx, http.MethodPost, path, &ch)
}

// APIError is the daemon's refusal of a control request.
type APIError struct {
	Msg  string `json:"error"`
	Hint string `json:"hint"`
}

func (e *APIError) Error() string    { return e.Msg }
func (e *APIError) HintText() string { return e.Hint }

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	return c.doBody(ctx, method, path, nil, out)
}

func (c *Client) doBody(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://llmkey"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		if notRunning(err) {
			return ErrNotRunning
		}
		var ue *UntrustedError
		if errors.As(err, &ue) {
			return ue
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return &UnreachableError{Socket: c.paths.SocketPath(), Err: err}
		}
		return fmt.Errorf("talk to the daemon: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var ae APIError
		if json.Unmarshal(b, &ae) == nil && ae.Msg != "" {
			return &ae
		}
		return fmt.Errorf("daemon answered %s to %s: %s", resp.Status, path, b)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read the daemon's answer to %s: %w", path, err)
	}
	return nil
}

// roundTrip sends one request on a connection of its own and reads the
// answer: one call per connection, as the CLI makes a call or two and
// exits, so no transport (its pool, its goroutines) is set up for it.
func (c *Client) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	conn, err := dialDaemon(ctx, c.paths.RuntimeDir, c.paths.SocketPath())
	if err != nil {
		cancel()
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) }) // a cancel ends the call
	req.Close = true
	if err := req.Write(conn); err != nil {
		stop()
		cancel()
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		stop()
		cancel()
		conn.Close()
		return nil, err
	}
	resp.Body = &connBody{ReadCloser: resp.Body, done: func() { stop(); cancel(); conn.Close() }}
	return resp, nil
}

// connBody closes the connection with the answer's body.
type connBody struct {
	io.ReadCloser
	done func()
}

func (b *connBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// notRunning: no socket file, or a socket nobody listens on (a daemon
// killed with SIGKILL leaves one behind).
func notRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}
