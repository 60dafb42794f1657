package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
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

var upgrader = websocket.Upgrader{
	// The host, the origin and the token were checked already.
	CheckOrigin:       func(*http.Request) bool { return true },
	EnableCompression: true,
	ReadBufferSize:    4 << 10,
	WriteBufferSize:   4 << 10,
}

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
		Proxy:             http.ProxyFromEnvironment,
		HandshakeTimeout:  min(up.ResponseHeaderTimeout, 30*time.Second),
		Subprotocols:      websocket.Subprotocols(r),
		EnableCompression: true,
		ReadBufferSize:    4 << 10,
		WriteBufferSize:   4 << 10,
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
	h.pumpSocket(w, r, res.ans, snap.Config.Daemon)
}

// pumpSocket answers the client's handshake as the upstream answered
// ours, then copies messages both ways until either side closes, the
// connection is idle for stream_idle_timeout, a client does not take a
// message within client_timeout, or a drain cuts it. Each response that
// ends is counted with its usage.
func (h *Handler) pumpSocket(w http.ResponseWriter, r *http.Request, ans *answer, dc state.DaemonConfig) {
	upConn := ans.conn
	defer upConn.Close()
	client, err := upgrader.Upgrade(w, r, socketAnswer(ans))
	if err != nil {
		ans.lease.Cancel()
		return // the upgrader answered the client
	}
	defer client.Close()
	s := &socket{h: h, ans: ans, client: client, upstream: upConn, idle: ans.up.StreamIdleTimeout,
		clientTimeout: dc.ClientWait(), limit: dc.BodyLimit(), budget: dc.BufferedLimit()}
	s.timer = time.AfterFunc(s.idle, s.end)
	defer s.timer.Stop()
	uncut := context.AfterFunc(h.cutContext(), s.end)
	defer uncut()

	errs := make(chan error, 2)
	go func() { errs <- s.copy(client, upConn, false) }()
	go func() { errs <- s.copy(upConn, client, true) }()
	first := <-errs
	s.closeBoth(first)
	s.end()
	<-errs
	s.finish(first)
}

// socketAnswer is the handshake answer the client gets: the upstream's,
// less what the library writes itself, with the key that serves and the
// attempts it took.
func socketAnswer(ans *answer) http.Header {
	hdr := http.Header{}
	for k, vv := range ans.resp.Header {
		if !strings.HasPrefix(k, "Sec-Websocket") && k != "Upgrade" && k != "Connection" && k != "Content-Length" {
			hdr[k] = vv
		}
	}
	hdr.Set("X-Llmkey-Key", ans.up.Name+"/"+ans.key.Name)
	hdr.Set("X-Llmkey-Attempts", strconv.Itoa(ans.attempts))
	if p := ans.conn.Subprotocol(); p != "" {
		hdr.Set("Sec-WebSocket-Protocol", p)
	}
	return hdr
}

// socket is one WebSocket carried through, and what its responses used.
type socket struct {
	h                *Handler
	ans              *answer
	client, upstream *websocket.Conn
	// idle ends a connection silent both ways; clientTimeout, a client
	// that does not take a message.
	idle, clientTimeout time.Duration
	// limit is a message's largest size, inflated; budget, what request
	// bodies and messages may hold in memory together.
	limit, budget int64
	timer         *time.Timer
	once          sync.Once

	mu     sync.Mutex
	tokens int
	open   int // responses started and not ended
}

// end closes both connections, once.
func (s *socket) end() { s.once.Do(func() { s.client.Close(); s.upstream.Close() }) }

// copy carries messages from one side to the other as they come, each
// held whole (within limit and the budget) and counted when it comes from
// the upstream.
func (s *socket) copy(from, to *websocket.Conn, fromUpstream bool) error {
	// A client that stops reading is let go as a stream's is; an
	// upstream that stops, once the connection is idle.
	deadline := s.idle
	if fromUpstream {
		deadline = s.clientTimeout
	}
	for {
		typ, msg, reserved, err := s.read(from)
		if err != nil {
			return err
		}
		s.timer.Reset(s.idle)
		if fromUpstream && typ == websocket.TextMessage {
			s.count(wire.SocketEvent(msg))
		}
		to.SetWriteDeadline(time.Now().Add(deadline))
		err = to.WriteMessage(typ, msg)
		s.h.buffered.Add(-reserved)
		if err != nil {
			return err
		}
	}
}

// A message that cannot be held: too large, or no room in the budget.
var (
	errMessageTooBig = errors.New("message too big")
	errMessagesFull  = errors.New("messages in memory at their limit")
)

// read reads one message whole, up to limit bytes once inflated (a
// compressed message may grow a thousandfold), every byte it holds
// reserved in the budget first; the reservation is the caller's to
// release, also on an error.
func (s *socket) read(c *websocket.Conn) (typ int, msg []byte, reserved int64, err error) {
	typ, rd, err := c.NextReader()
	if err != nil {
		return 0, nil, 0, err
	}
	for {
		if len(msg) == cap(msg) {
			n := min(max(int64(cap(msg)), 4<<10), s.limit+1-int64(len(msg)))
			if !s.h.reserve(n, s.budget) {
				return 0, nil, reserved, errMessagesFull
			}
			reserved += n
			grown := make([]byte, len(msg), int64(len(msg))+n)
			copy(grown, msg)
			msg = grown
		}
		m, rerr := rd.Read(msg[len(msg):cap(msg)])
		msg = msg[:len(msg)+m]
		switch {
		case int64(len(msg)) > s.limit:
			return 0, nil, reserved, errMessageTooBig
		case rerr == io.EOF:
			return typ, msg, reserved, nil
		case rerr != nil:
			return 0, nil, reserved, rerr
		}
	}
}

// closeBoth ends the connection on both sides with a close that says
// why: the one a side sent, passed on with its code, or llmkey's own for
// a message it could not hold.
func (s *socket) closeBoth(why error) {
	var msg []byte
	var ce *websocket.CloseError
	switch {
	case errors.As(why, &ce):
		msg = websocket.FormatCloseMessage(ce.Code, ce.Text)
	case errors.Is(why, errMessageTooBig):
		msg = websocket.FormatCloseMessage(websocket.CloseMessageTooBig,
			fmt.Sprintf("llmkey: a message over %d MiB ([daemon] max_body_mb)", s.limit>>20))
	case errors.Is(why, errMessagesFull):
		msg = websocket.FormatCloseMessage(websocket.CloseTryAgainLater,
			fmt.Sprintf("llmkey: %d MiB of messages and bodies in memory ([daemon] max_buffered_mb); retry in a moment", s.budget>>20))
	default:
		return
	}
	deadline := time.Now().Add(time.Second)
	s.client.WriteControl(websocket.CloseMessage, msg, deadline)
	s.upstream.WriteControl(websocket.CloseMessage, msg, deadline)
}

// count reads what an upstream message says of a response: one began
// (it may create stored state that later turns refer to), or one ended,
// with its usage.
func (s *socket) count(ev wire.SocketEventInfo) {
	ans := s.ans
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ev.Started:
		s.open++
		if ev.ID != "" && wire.For(ans.up.Kind).StoresResponses {
			// A later HTTP turn may refer to it as its previous
			// response: that turn goes to this key.
			ans.up.Pool.Bind(wire.ResponseRef(ev.ID), ans.key.Name)
		}
	case ev.Ended:
		s.open = max(s.open-1, 0)
		c := ev.Usage.Counts()
		s.tokens += int(c.Tokens())
		c.Requests, c.Successes = 1, 1
		m := ans.model
		if ev.Model != "" {
			m = ev.Model
		}
		s.h.record(ans.up, ans.key, m, ans.label, c)
	}
}

// finish settles the connection once both sides are done: a response
// cut off is counted as partial, and the key's lease ends.
func (s *socket) finish(why error) {
	ans := s.ans
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open > 0 {
		s.h.record(ans.up, ans.key, ans.model, ans.label, state.Counts{Requests: 1, Partial: 1})
	}
	ans.lease.Done(rotate.Outcome{Class: rotate.Success, Status: http.StatusSwitchingProtocols}, s.tokens)
	ans.log.Info("WebSocket closed", "key", ans.key.Name, "attempts", ans.attempts, "ms", s.h.Clock.Now().Sub(ans.start).Milliseconds(),
		"reason", redact(fmt.Sprint(why), ans.secrets))
}
