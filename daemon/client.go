package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/llmkey/llmkey/state"
)

// ErrNotRunning means no daemon answers on the socket.
var ErrNotRunning = errors.New("the llmkey daemon is not running")

// Client talks to the daemon over its control socket.
type Client struct {
	http *http.Client
}

// NewClient makes a client for the daemon of paths. It does not connect.
func NewClient(paths state.Paths) *Client {
	sock := paths.SocketPath()
	return &Client{http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}}
}

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

// Reload makes the daemon re-read the keyfile now.
func (c *Client) Reload(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.do(ctx, http.MethodPost, "/v1/reload", &st)
}

// Stop asks the daemon to drain and exit; it returns at once.
func (c *Client) Stop(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/stop", nil)
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://llmkey"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if notRunning(err) {
			return ErrNotRunning
		}
		return fmt.Errorf("talk to the daemon: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
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

// notRunning: no socket file, or a socket nobody listens on (a daemon
// killed with SIGKILL leaves one behind).
func notRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}
