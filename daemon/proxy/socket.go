// SPDX-License-Identifier: MIT

package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// pumpSocket answers the client's handshake as the upstream answered
// ours, then copies messages both ways until either side closes, the
// connection is idle for stream_idle_timeout, a client does not take a
// message within client_timeout, or a drain cuts it. Each response that
// ends is counted with its usage; one the upstream refuses judges the key
// as the HTTP answer would, and is sent on another key when the client's
// request for it is still held (see move).
func (h *Handler) pumpSocket(w http.ResponseWriter, q *request, sd *socketDial, ans *answer, dc state.DaemonConfig) {
	client, err := upgrader.Upgrade(w, q.r, socketAnswer(ans))
	if err != nil {
		ans.conn.Close()
		ans.lease.Cancel()
		return // the upgrader answered the client
	}
	s := &socket{h: h, q: q, sd: sd, cur: ans, client: client, idle: ans.up.StreamIdleTimeout, attempts: ans.attempts,
		clientTimeout: dc.ClientWait(), limit: dc.BodyLimit(), budget: dc.BufferedLimit(), maxMoves: dc.Attempts()}
	s.timer = time.AfterFunc(s.idle, s.end)
	defer s.timer.Stop()
	uncut := context.AfterFunc(h.cutContext(), s.end)
	defer uncut()

	errs := make(chan error, 2)
	go func() { errs <- s.fromClient() }()
	go func() { errs <- s.fromUpstream() }()
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

// socket is one WebSocket carried through: the client's connection, the
// key it is on now with its upstream connection, and what its responses
// used.
type socket struct {
	h      *Handler
	q      *request
	sd     *socketDial
	client *websocket.Conn
	// idle ends a connection silent both ways; clientTimeout, a client
	// that does not take a message.
	idle, clientTimeout time.Duration
	// limit is a message's largest size, inflated; budget, what request
	// bodies and messages may hold in memory together.
	limit, budget int64
	maxMoves      int
	timer         *time.Timer
	once          sync.Once

	mu       sync.Mutex
	cur      *answer // the key the socket is on, its lease and upstream
	judged   bool    // a refusal on cur's key judged it already
	ended    bool
	attempts int
	open     int // responses started and not ended
	// held is the client's response.create that the upstream has not
	// begun to answer, while it refers to nothing only its key has (nil:
	// none), with its reservation in the budget and its model; tried, the
	// keys that refused it; moves, how often it moved.
	held     []byte
	reserved int64
	model    string
	tried    []string
	moves    int
}

// upstream is the connection to the key the socket is on now.
func (s *socket) upstream() *websocket.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.conn
}

// end closes both connections, once.
func (s *socket) end() {
	s.once.Do(func() {
		s.client.Close()
		s.mu.Lock()
		s.ended = true
		s.cur.conn.Close()
		s.mu.Unlock()
	})
}

// fromClient carries the client's messages to the upstream, holding a
// copy of each request for a response until the upstream begins it. A
// client that stops reading is let go after client_timeout, as a stream's
// is, by the other direction's writes.
func (s *socket) fromClient() error {
	for {
		typ, msg, reserved, err := s.read(s.client)
		if err != nil {
			s.h.buffered.Add(-reserved)
			return err
		}
		s.timer.Reset(s.idle)
		if typ == websocket.TextMessage && s.hold(msg, reserved) {
			reserved = 0 // held: released once the upstream begins it
		}
		err = s.send(msg, typ)
		s.h.buffered.Add(-reserved)
		if err != nil {
			return err
		}
	}
}

// send writes a client's message to the upstream; one that went to a
// connection the socket moved away from meanwhile goes to the new one.
func (s *socket) send(msg []byte, typ int) error {
	for {
		to := s.upstream()
		to.SetWriteDeadline(time.Now().Add(s.idle))
		err := to.WriteMessage(typ, msg)
		if err == nil || s.upstream() == to {
			return err
		}
	}
}

// hold keeps a copy of a client's request for a response, which may go
// to another key should this one refuse it: not one that refers to state
// only this key has. It reports whether it kept msg.
func (s *socket) hold(msg []byte, reserved int64) bool {
	creates, model, refers := wire.SocketRequest(msg)
	if !creates {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.h.buffered.Add(-s.reserved)
	s.held, s.reserved, s.model, s.tried, s.moves = nil, 0, model, nil, 0
	if refers {
		return false
	}
	s.held, s.reserved = msg, reserved
	return true
}

// fromUpstream carries the upstream's messages to the client, reading
// each for what it says of the key; a refusal that moved the request to
// another key is not passed on.
func (s *socket) fromUpstream() error {
	for {
		from := s.upstream()
		typ, msg, reserved, err := s.read(from)
		if err != nil {
			s.h.buffered.Add(-reserved)
			if s.upstream() != from {
				continue // moved: the old connection was closed
			}
			var ce *websocket.CloseError
			if !errors.As(err, &ce) && !errors.Is(err, errMessageTooBig) && !errors.Is(err, errMessagesFull) {
				err = upstreamFailed{err}
			}
			return err
		}
		s.timer.Reset(s.idle)
		if typ == websocket.TextMessage && s.inspect(msg) {
			s.h.buffered.Add(-reserved)
			continue
		}
		s.client.SetWriteDeadline(time.Now().Add(s.clientTimeout))
		err = s.client.WriteMessage(typ, msg)
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

// read reads one message whole, up to limit bytes, every byte it holds
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

// upstreamFailed is a read of the upstream's connection that failed
// without a close from it.
type upstreamFailed struct{ error }

func (e upstreamFailed) Unwrap() error { return e.error }

// closeBoth ends the connection on both sides with a close that says
// why: the one a side sent, passed on with its code; llmkey's own for a
// message it could not hold; for an upstream that broke off or broke the
// protocol, 1011 to the client (1014, "bad gateway", is newer than what
// common clients accept).
func (s *socket) closeBoth(why error) {
	var msg []byte
	var ce *websocket.CloseError
	var uf upstreamFailed
	switch {
	case errors.As(why, &ce):
		msg = websocket.FormatCloseMessage(ce.Code, ce.Text)
	case errors.Is(why, errMessageTooBig):
		msg = websocket.FormatCloseMessage(websocket.CloseMessageTooBig,
			fmt.Sprintf("llmkey: a message over %d MiB ([daemon] max_body_mb)", s.limit>>20))
	case errors.Is(why, errMessagesFull):
		msg = websocket.FormatCloseMessage(websocket.CloseTryAgainLater,
			fmt.Sprintf("llmkey: %d MiB of messages and bodies in memory ([daemon] max_buffered_mb); retry in a moment", s.budget>>20))
	case errors.As(why, &uf):
		reason := "llmkey: the upstream's connection failed: " + redact(rootCause(uf.error), s.q.snap.Secrets)
		if len(reason) > 120 { // a close's reason fits in a control frame
			reason = reason[:120]
		}
		s.client.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, reason), time.Now().Add(time.Second))
		return
	default:
		return
	}
	deadline := time.Now().Add(time.Second)
	s.client.WriteControl(websocket.CloseMessage, msg, deadline)
	s.upstream().WriteControl(websocket.CloseMessage, msg, deadline)
}

// finish settles the connection once both sides are done: a response
// cut off is counted as partial, the request still held gives its
// reservation back, and the key's lease ends.
func (s *socket) finish(why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ans := s.cur
	if s.open > 0 {
		s.h.record(ans.up, ans.key, s.modelOr(ans.model), ans.label, state.Counts{Requests: 1, Partial: 1})
	}
	s.release()
	s.settleKey(ans, s.judged)
	ans.log.Info("WebSocket closed", "key", ans.key.Name, "attempts", s.attempts, "ms", s.h.Clock.Now().Sub(ans.start).Milliseconds(),
		"reason", redact(fmt.Sprint(why), ans.secrets))
}

// modelOr is the model of the request held last, else m.
func (s *socket) modelOr(m string) string {
	if s.model != "" {
		return s.model
	}
	return m
}

// inspect reads an upstream message for what it says of the key and of
// the response; it reports whether the request moved to another key
// instead of the message being passed on.
func (s *socket) inspect(msg []byte) bool {
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	ev := wire.SocketEvent(msg)
	o, failed := wire.SocketFailure(cur.up.Kind, msg, s.h.Clock.Now())
	s.count(ev, failed)
	return failed && s.refused(cur, o)
}

// count keeps the socket's responses: one that begins is the client's
// from now on (its request is no longer held for another key) and may
// create stored state that later turns refer to; one that ends is
// counted with its usage, unless it failed (counted as the refusal).
func (s *socket) count(ev wire.SocketEventInfo, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ans := s.cur
	switch {
	case ev.Started:
		s.open++
		s.release()
		if ev.ID != "" && wire.For(ans.up.Kind).StoresResponses {
			// A later HTTP turn may refer to it as its previous
			// response: that turn goes to this key.
			ans.up.Pool.Bind(wire.ResponseRef(ev.ID), ans.key.Name)
		}
	case ev.Ended:
		s.open = max(s.open-1, 0)
		s.release()
		if failed {
			return
		}
		c := ev.Usage.Counts()
		c.Requests, c.Successes = 1, 1
		m := s.modelOr(ans.model)
		if ev.Model != "" {
			m = ev.Model
		}
		ans.lease.Spent(spendOf(ans.up, m, c))
		s.h.record(ans.up, ans.key, m, ans.label, c)
	}
}

// release lets the held request go; the caller holds s.mu.
func (s *socket) release() {
	s.h.buffered.Add(-s.reserved)
	s.held, s.reserved = nil, 0
}

// refused settles a refusal of a response by the key the socket is on,
// as the same HTTP answer would be: the key is judged (cooled, parked)
// and the attempt counted as failed. While the client's request is still
// held and another key may answer better, it moves there and the client
// never sees the refusal; else the refusal is passed on, and a client
// that reconnects lands on another key.
func (s *socket) refused(cur *answer, o rotate.Outcome) bool {
	s.mu.Lock()
	model, held := s.modelOr(cur.model), s.held
	movable := held != nil && o.Class.Retryable() && s.moves < s.maxMoves
	s.judged = true
	s.mu.Unlock()
	cur.lease.Judge(o, model)
	s.h.record(cur.up, cur.key, model, cur.label, failedAttempt(o.Class.String()))
	if o.Class.SetsAside() != rotate.Ready {
		s.h.Events.SetAside(cur.up.Name, cur.key.Name, o.Class)
	}
	cur.log.Info("response refused on the socket", "key", cur.up.Name+"/"+cur.key.Name, "class", o.Class.String(), "status", o.Status,
		"reason", redact(o.Reason, cur.secrets), "wait", o.Wait, "retry", movable)
	return movable && s.move(cur, held, model)
}

// move sends the held request on another key: the attempt loop finds
// one whose upstream accepts a socket, as for the client's handshake,
// and the socket carries on there. It reports false when no key could
// take it.
func (s *socket) move(cur *answer, held []byte, model string) bool {
	s.mu.Lock()
	s.tried = append(s.tried, cur.key.Name)
	s.moves++
	q := *s.q
	q.tried, q.start = slices.Clone(s.tried), s.h.Clock.Now()
	if model != "" {
		q.model = model
	}
	s.mu.Unlock()
	res := s.h.run(&q, s.sd, cur.up)
	next := res.ans
	if next == nil {
		return false
	}
	next.conn.SetWriteDeadline(time.Now().Add(s.idle))
	if err := next.conn.WriteMessage(websocket.TextMessage, held); err != nil {
		next.conn.Close()
		next.lease.Done(rotate.TransportOutcome(rootCause(err)), rotate.Spend{})
		return false
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		next.conn.Close()
		next.lease.Cancel()
		return true
	}
	old, judged := s.cur, s.judged
	s.cur, s.judged, s.attempts = next, false, s.attempts+res.ans.attempts
	s.mu.Unlock()
	s.h.Events.Retried(cur.up.Name)
	s.settleKey(old, judged)
	old.conn.Close()
	next.log.Info("socket moved to another key", "from", old.up.Name+"/"+old.key.Name, "to", next.up.Name+"/"+next.key.Name)
	return true
}

// settleKey ends the lease of a key the socket is done with (what its
// responses spent counted as each ended): a success unless one of its
// refusals judged it already.
func (s *socket) settleKey(ans *answer, judged bool) {
	if judged {
		ans.lease.Release(rotate.Spend{})
		return
	}
	ans.lease.Done(rotate.Outcome{Class: rotate.Success, Status: http.StatusSwitchingProtocols}, rotate.Spend{})
}
