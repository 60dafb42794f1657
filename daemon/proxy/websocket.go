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

// serveWebSocket carries one WebSocket connection through to up.
func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request, snap *Snapshot, up *Upstream, rest string, grant *Grant) {
	dc := snap.Config.Daemon
	if limit := dc.SocketLimit(); h.sockets.Add(1) > int64(limit) {
		h.sockets.Add(-1)
		wire.WriteError(w, up.Kind, wire.Error{Status: http.StatusTooManyRequests, Code: wire.Overloaded, RetryAfter: time.Second,
			Message: fmt.Sprintf("more than %d WebSockets open ([daemon] max_websockets); retry in a moment", limit)})
		return
	}
	defer h.sockets.Add(-1)

	start := h.Clock.Now()
	budget := rotate.Budget{Start: start, MaxAttempts: dc.Attempts(), RetryDeadline: dc.RetryDeadline.Or(state.DefaultRetryDeadline), MaxWait: dc.WaitLimit()}
	model := wire.ModelLabel(r.URL.Query().Get("model")) // Realtime and Live name it in the URL
	log := &reqLog{log: h.Log, provider: up.Name, model: model, method: "WEBSOCKET", path: r.URL.Path}
	target, err := socketTarget(up, rest, r.URL.RawQuery, "")
	if err != nil {
		wire.WriteError(w, up.Kind, wire.Error{Status: http.StatusBadGateway, Code: wire.UpstreamUnreachable,
			Message: fmt.Sprintf("%s's base_url %q cannot carry a WebSocket", up.Name, up.BaseURL)})
		return
	}
	hdr := r.Header.Clone()
	removeHopHeaders(hdr)
	for _, name := range append(wire.InboundAuthHeaders, socketHeaders...) {
		delete(hdr, name)
	}
	dialer := websocket.Dialer{
		Proxy:             http.ProxyFromEnvironment,
		HandshakeTimeout:  min(up.ResponseHeaderTimeout, 30*time.Second),
		Subprotocols:      websocket.Subprotocols(r),
		EnableCompression: true,
		ReadBufferSize:    4 << 10,
		WriteBufferSize:   4 << 10,
	}

	only, label := grant.selection(up.Name)
	session := wire.SessionOf(r.Header) // the key is the connection's: its turns all go there
	primary, fc := up, h.chain(snap, up, grant, false)
	var tried []string
	n, nLeg := 0, 0 // attempts, in all and on this provider
	var lastStatus int
	var lastBody []byte
	var lastHeader http.Header
	// move goes on to the fallback fb, as a request does; false when fb
	// cannot carry a WebSocket.
	move := func(fb *Upstream) bool {
		mapped := model
		if m, ok := primary.FallbackModels[model]; ok {
			mapped = m
		}
		t, err := socketTarget(fb, rest, r.URL.RawQuery, mapped)
		if err != nil {
			return false
		}
		log.Info("falling over", "from", primary.Name, "to", fb.Name, "model", mapped)
		up, target, model, tried, nLeg, lastStatus = fb, t, wire.ModelLabel(mapped), nil, 0, 0
		only, _ = grant.selection(fb.Name)
		delete(hdr, primary.authHeader)
		budget.Start = h.Clock.Now()
		return true
	}
	for {
		lease, den := up.Pool.Take(rotate.Ask{Model: model, Tried: tried, Only: only, Session: session})
		if den != nil {
			now := h.Clock.Now()
			switch st, fb := fc.denied(r.Context(), up, den, now); {
			case st == chainGone:
				return
			case st == chainWaited:
				continue
			case st == chainMoved && move(fb):
				continue
			}
			if d := rotate.Decide(budget, nLeg, nil, den, now); d.Step == rotate.Wait {
				if !waitForKey(r.Context(), den, d.Until.Sub(now)) {
					return
				}
				continue
			}
			h.Events.Denied(up.Name, den.Code)
			fc.answered(up)
			if lastStatus != 0 && den.Code != rotate.AllKeysCooling && den.Code != rotate.ProviderUnavailable {
				writeRefusal(w, lastStatus, lastHeader, lastBody, up, n)
				return
			}
			wire.WriteError(w, up.Kind, deniedError(up.Name, den, now))
			return
		}
		key, ok := up.Keys[lease.Name]
		if !ok {
			lease.Cancel()
			tried = append(tried, lease.Name)
			continue
		}
		n++
		nLeg++
		hdr[up.authHeader] = key.auth
		ctx, cancel := context.WithTimeout(r.Context(), dialer.HandshakeTimeout)
		upConn, resp, err := dialer.DialContext(ctx, target, hdr)
		cancel()
		if err == nil {
			fc.served(up)
			h.pumpSocket(w, r, up, key, lease, upConn, resp, n, model, label, log, start, snap.Secrets)
			return
		}
		if r.Context().Err() != nil {
			lease.Cancel()
			return
		}
		var o rotate.Outcome
		if resp != nil && resp.StatusCode >= 400 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			cleanHeader(resp.Header, key.Secret, snap.Secrets)
			lastStatus, lastHeader, lastBody = resp.StatusCode, resp.Header, []byte(redact(string(body), snap.Secrets))
			o = wire.Classify(up.Kind, resp.StatusCode, resp.Header, lastBody, h.Clock.Now())
			if leaks(string(lastBody), key.Secret) || leaks(o.Reason, key.Secret) {
				lastBody, o.Reason = []byte("{}"), fmt.Sprintf("%d %s", o.Status, o.Class)
			}
		} else {
			reason := rootCause(err)
			if resp != nil {
				reason = fmt.Sprintf("the upstream answered %d to the WebSocket handshake", resp.StatusCode)
			}
			o = rotate.TransportOutcome(redact(reason, snap.Secrets))
			lastStatus, lastHeader, lastBody = 0, nil, nil
		}
		tried = h.failed(up, key, lease, model, label, o, tried)
		d := rotate.Decide(budget, nLeg, &o, nil, h.Clock.Now())
		log.Info("WebSocket handshake failed", "key", key.Name, "attempt", n, "class", o.Class.String(), "status", o.Status,
			"reason", o.Reason, "retry", d.Step == rotate.Retry)
		if d.Step != rotate.Retry {
			if fb := fc.failed(o); fb != nil && move(fb) {
				continue
			}
			fc.answered(up)
			if lastStatus != 0 {
				writeRefusal(w, lastStatus, lastHeader, lastBody, up, n)
				return
			}
			wire.WriteError(w, up.Kind, wire.Error{Status: http.StatusBadGateway, Code: wire.UpstreamUnreachable,
				Message: fmt.Sprintf("could not open a WebSocket to %s at %s: %s", up.Name, hostOf(up.BaseURL), o.Reason)})
			return
		}
		h.Events.Retried(up.Name)
	}
}

// writeRefusal passes the upstream's refusal of the handshake on.
func writeRefusal(w http.ResponseWriter, status int, header http.Header, body []byte, up *Upstream, attempts int) {
	hdr := w.Header()
	copyHeader(hdr, header)
	removeHopHeaders(hdr)
	for _, name := range socketHeaders {
		delete(hdr, name)
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("X-Llmkey-Attempts", strconv.Itoa(attempts))
	w.WriteHeader(status)
	w.Write(body)
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
	q := stripKeyParam(rawQuery)
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

// pumpSocket answers the client's handshake as the upstream answered
// ours, then copies messages both ways until either side closes, the
// connection is idle for stream_idle_timeout, or a drain cuts it. Each
// response that ends is counted with its usage.
func (h *Handler) pumpSocket(w http.ResponseWriter, r *http.Request, up *Upstream, key Key, lease rotate.Lease,
	upConn *websocket.Conn, resp *http.Response, attempts int, model, label string, log *reqLog, start time.Time, secrets []string) {
	defer upConn.Close()
	answer := http.Header{}
	for k, vv := range resp.Header {
		if !strings.HasPrefix(k, "Sec-Websocket") && k != "Upgrade" && k != "Connection" && k != "Content-Length" {
			answer[k] = vv
		}
	}
	maskHeader(answer, key.Secret)
	answer.Set("X-Llmkey-Key", up.Name+"/"+key.Name)
	answer.Set("X-Llmkey-Attempts", strconv.Itoa(attempts))
	if p := upConn.Subprotocol(); p != "" {
		answer.Set("Sec-WebSocket-Protocol", p)
	}
	client, err := upgrader.Upgrade(w, r, answer)
	if err != nil {
		lease.Cancel()
		return // the upgrader answered the client
	}
	defer client.Close()

	var (
		mu      sync.Mutex
		tokens  int
		open    int // responses started and not ended
		idle    = up.StreamIdleTimeout
		closing = make(chan struct{})
		once    sync.Once
	)
	end := func() { once.Do(func() { close(closing); client.Close(); upConn.Close() }) }
	timer := time.AfterFunc(idle, end)
	defer timer.Stop()
	uncut := context.AfterFunc(h.cutContext(), end)
	defer uncut()

	count := func(ev wire.SocketEventInfo) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case ev.Started:
			open++
			if ev.ID != "" && up.Kind == state.KindOpenAI {
				// A later HTTP turn may refer to it as its previous
				// response: that turn goes to this key.
				up.Pool.Bind(wire.ResponseRef(ev.ID), key.Name)
			}
		case ev.Ended:
			open = max(open-1, 0)
			c := ev.Usage.Counts()
			tokens += int(c.Tokens())
			c.Requests, c.Successes = 1, 1
			m := model
			if ev.Model != "" {
				m = ev.Model
			}
			h.record(up, key, m, label, c)
		}
	}
	copyMessages := func(from, to *websocket.Conn, meter bool) error {
		for {
			typ, msg, err := from.ReadMessage()
			if err != nil {
				return err
			}
			timer.Reset(idle)
			if meter && typ == websocket.TextMessage {
				count(wire.SocketEvent(msg))
			}
			to.SetWriteDeadline(time.Now().Add(idle))
			if err := to.WriteMessage(typ, msg); err != nil {
				return err
			}
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- copyMessages(client, upConn, false) }()
	go func() { errs <- copyMessages(upConn, client, true) }()
	first := <-errs
	// Pass a close on, with its code, to the other side; then end both.
	var ce *websocket.CloseError
	if errors.As(first, &ce) {
		msg := websocket.FormatCloseMessage(ce.Code, ce.Text)
		client.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		upConn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
	end()
	<-errs

	mu.Lock()
	defer mu.Unlock()
	if open > 0 { // a response cut off: counted as partial
		h.record(up, key, model, label, state.Counts{Requests: 1, Partial: 1})
	}
	lease.Done(rotate.Outcome{Class: rotate.Success, Status: http.StatusSwitchingProtocols}, tokens)
	log.Info("WebSocket closed", "key", key.Name, "attempts", attempts, "ms", h.Clock.Now().Sub(start).Milliseconds(), "reason", redact(fmt.Sprint(first), secrets))
}
