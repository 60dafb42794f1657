// SPDX-License-Identifier: MIT

package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/llmkey/llmkey/daemon/wire"
)

// WebSocket APIs (the Responses API over WebSocket, Realtime, Gemini
// Live) pass through on every provider route. The key is chosen once per
// connection, before the client's handshake is answered: a refusal of the
// upstream handshake (429, 401, 5xx) is retried on another key as a
// request would be, and only an upstream that accepted is answered 101.
// Then messages are copied both ways as they come, each response's usage
// is read from the message that ends it, and the connection holds its
// key's lease until it closes. Open sockets have an admission limit of
// their own ([daemon] max_websockets), so they cannot starve requests.

// socketHeaders are the handshake's own headers, which the WebSocket
// library writes on each side itself.
var socketHeaders = []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
	"Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "Sec-Websocket-Accept"}

// Neither side is offered permessage-deflate: a message then goes on in
// the frames it came in (a compressed one is re-framed by the library, and
// an upstream that reads a message as one frame hangs on pieces), and no
// message inflates past what came on the wire. To the client, the library
// writes every message as one frame; to the upstream, one of up to
// socketFrame bytes, from a buffer pooled between messages so that an open
// socket holds none.
var upgrader = websocket.Upgrader{
	// The host, the origin and the token were checked already.
	CheckOrigin:     func(*http.Request) bool { return true },
	ReadBufferSize:  4 << 10,
	WriteBufferSize: 4 << 10,
}

// socketFrame is the largest frame a message goes to the upstream in.
const socketFrame = 1 << 20

var socketWriteBuffers sync.Pool

// socketDial is the attempter of a WebSocket: each attempt dials the
// upstream with the key; the caller answers the client 101 once one
// accepted.
type socketDial struct {
	r       *http.Request
	rest    string // the route on the primary
	target  string // where it dials now
	header  http.Header
	dialer  websocket.Dialer
	secrets []string
}

// newSocketDial readies the client's handshake r for up; false when up's
// base URL cannot carry a WebSocket.
func newSocketDial(r *http.Request, up *Upstream, rest string, secrets []string) (*socketDial, bool) {
	target, err := socketTarget(up, rest, r.URL.RawQuery, "")
	if err != nil {
		return nil, false
	}
	hdr := r.Header.Clone()
	removeHopHeaders(hdr)
	for _, name := range append(wire.InboundAuthHeaders, socketHeaders...) {
		delete(hdr, name)
	}
	sd := &socketDial{r: r, rest: rest, target: target, header: hdr, secrets: secrets, dialer: websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: min(up.ResponseHeaderTimeout, 30*time.Second),
		Subprotocols:     websocket.Subprotocols(r),
		ReadBufferSize:   4 << 10,
		WriteBufferSize:  socketFrame,
		WriteBufferPool:  &socketWriteBuffers,
	}}
	return sd, true
}

func (sd *socketDial) send(ctx context.Context, up *Upstream, key Key, n int) *attempt {
	a := &attempt{key: key}
	hdr := sd.header.Clone() // a later attempt must not see this key
	key.authorize(hdr, up)
	ctx, cancel := context.WithTimeout(ctx, sd.dialer.HandshakeTimeout)
	defer cancel()
	conn, resp, err := sd.dialer.DialContext(ctx, sd.target, hdr)
	a.resp, a.conn = resp, conn
	switch {
	case err == nil:
		maskHeader(resp.Header, key.Secret)
	case resp != nil && resp.StatusCode >= 400:
		a.readRefusal(up, sd.secrets)
	case resp != nil:
		a.err = fmt.Errorf("the upstream answered %d to the WebSocket handshake", resp.StatusCode)
	default:
		a.err = err
	}
	return a
}

func (sd *socketDial) enter(primary, fb *Upstream, model string) string {
	mapped := mappedModel(primary, model)
	sd.target, _ = socketTarget(fb, sd.rest, sd.r.URL.RawQuery, mapped) // carries checked it
	return wire.ModelLabel(mapped)
}

func (sd *socketDial) carries(primary, fb *Upstream, model string) bool {
	_, err := socketTarget(fb, sd.rest, sd.r.URL.RawQuery, mappedModel(primary, model))
	return err == nil
}

// socketTarget is the URL a WebSocket to up's route rest dials: its
// base URL with a WebSocket scheme, the client's query less its key, and
// the model named there renamed to model (a fallback's name; "": as it
// came).
func socketTarget(up *Upstream, rest, rawQuery, model string) (string, error) {
	target, err := socketURL(up.BaseURL + rest)
	if err != nil {
		return "", err
	}
	q := wire.StripCredentials(rawQuery)
	if model != "" {
		if v, perr := url.ParseQuery(q); perr == nil && v.Get("model") != "" && v.Get("model") != model {
			v.Set("model", model)
			q = v.Encode()
		}
	}
	if q != "" {
		target += "?" + q
	}
	return target, nil
}

// socketURL is base's URL with a WebSocket scheme.
func socketURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", errors.New("not an http(s) URL")
	}
	return u.String(), nil
}

// serveWebSocket carries one WebSocket through to up: the attempt loop
// finds a key whose upstream accepts the handshake, then messages are
// pumped both ways.
func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request, snap *Snapshot, up *Upstream, rest string, grant *Grant) {
	if limit := snap.Config.Daemon.SocketLimit(); h.sockets.Add(1) > int64(limit) {
		h.sockets.Add(-1)
		_, label := grant.selection(up.Name)
		h.refused(up, "", "", label, string(wire.Overloaded))
		wire.WriteError(w, up.Kind, wire.Error{Status: http.StatusTooManyRequests, Code: wire.Overloaded, RetryAfter: time.Second,
			Message: fmt.Sprintf("more than %d WebSockets open ([daemon] max_websockets); retry in a moment", limit)})
		return
	}
	defer h.sockets.Add(-1)
	sd, ok := newSocketDial(r, up, rest, snap.Secrets)
	if !ok {
		wire.WriteError(w, up.Kind, wire.Error{Status: http.StatusBadGateway, Code: wire.UpstreamUnreachable,
			Message: fmt.Sprintf("%s's base_url %q cannot carry a WebSocket", up.Name, up.BaseURL)})
		return
	}
	model := wire.ModelLabel(r.URL.Query().Get("model")) // Realtime and Live name it in the URL
	q := &request{r: r, snap: snap, grant: grant, model: model, session: wire.SessionOf(r.Header), start: h.Clock.Now(),
		log: &reqLog{log: h.Log, provider: up.Name, model: model, method: "WEBSOCKET", path: r.URL.Path}}
	res := h.run(q, sd, up)
	if res.ans == nil {
		h.answer(w, q, res)
		return
	}
	h.pumpSocket(w, q, sd, res.ans, snap.Config.Daemon)
}
