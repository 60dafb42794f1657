package proxy

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// Handler is the proxy: /livez and /healthz, /metrics, then
// /<provider>/<rest> -> <base_url>/<rest> with the key swapped in. Its
// fields are set before it serves and not changed after.
type Handler struct {
	// Snapshot is the configuration a new request takes.
	Snapshot func() *Snapshot
	// Token is the local token every request must carry, or one that
	// Grants knows: a scoped token.
	Token string
	// Grants looks up a scoped token (nil: there are none).
	Grants    func(token string) (*Grant, bool)
	Clock     rotate.Clock
	Log       *slog.Logger
	Transport http.RoundTripper
	// Usage counts each attempt's outcome; Events hears of retries,
	// keys set aside and requests denied (for metrics); Metrics serves
	// /metrics behind the same checks as a request.
	Usage   Recorder
	Events  Events
	Metrics http.Handler

	inFlight atomic.Int64
	sockets  atomic.Int64 // WebSockets open; apart from inFlight, with their own limit
	// inSockets counts WebSocket requests being handled, handshake
	// included, for the drain.
	inSockets atomic.Int64
	draining  atomic.Bool
	buffered  atomic.Int64 // bytes of request bodies held, all requests together
	// cut ends every attempt still open when a drain runs out of time,
	// so that each is counted (partial) before the daemon exits.
	cutOnce sync.Once
	cut     context.Context
	cutAll  context.CancelCauseFunc
}

// cutContext is done once the drain timed out.
func (h *Handler) cutContext() context.Context {
	h.cutOnce.Do(func() { h.cut, h.cutAll = context.WithCancelCause(context.Background()) })
	return h.cut
}

// Recorder counts usage: c under k on the UTC day of now.
type Recorder interface {
	Add(now time.Time, k state.UsageKey, c state.Counts)
}

// Events are what the request path tells metrics.
type Events interface {
	Retried(provider string)
	SetAside(provider, key string, class rotate.Class)
	Denied(provider string, code rotate.DenialCode)
	// Fallback: a request of provider entered its fallback chain, was
	// recovered by the primary, fell back to the provider to, or found
	// it exhausted.
	Fallback(provider, to string, result FallbackResult)
}

// InFlight is the number of requests being served now.
func (h *Handler) InFlight() int64 { return h.inFlight.Load() }

// Draining reports whether Drain was called.
func (h *Handler) Draining() bool { return h.draining.Load() }

// Drain refuses new requests from now on (with a clear "draining"
// answer: the listener stays open) and waits for those in flight,
// streams included, up to timeout. Those still in flight then are cut,
// and counted as partial with the tokens seen, before Drain returns (a
// moment more at most); it returns how many were cut.
func (h *Handler) Drain(timeout time.Duration) int64 {
	h.draining.Store(true)
	if h.waitIdle(timeout) {
		return 0
	}
	n := h.inFlight.Load() + h.inSockets.Load()
	h.cutContext()
	h.cutAll(errDrainCut)
	h.waitIdle(cutGrace)
	return n
}

// cutGrace is how long a cut request has to count itself.
const cutGrace = 2 * time.Second

// waitIdle waits up to timeout for no request to be in flight.
func (h *Handler) waitIdle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for h.inFlight.Load() > 0 || h.inSockets.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// ServeHTTP admits a request, then forwards it: a WebSocket upgrade
// and a request take the same checks and the same attempt loop.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, rest := splitRoute(r.URL.EscapedPath())
	snap := h.Snapshot()
	up, known := snap.Provider(name)
	kind := wire.DefaultKind // an unknown route is answered in the most common shape
	if known {
		kind = up.Kind
		rest = wire.UpstreamPath(up.Kind, rest)
	}
	grant, ok := h.admit(w, r, snap, kind, known, name, rest)
	if !ok {
		return
	}
	upgrade := websocket.IsWebSocketUpgrade(r)
	// Counted before the draining check, so that a drain that sees zero
	// in flight cannot miss a request that is just starting. WebSockets
	// are counted for the drain, not against max_in_flight.
	counter := &h.inFlight
	if upgrade {
		counter = &h.inSockets
	}
	counter.Add(1)
	defer counter.Add(-1)
	if e := h.routeError(snap, up, known, name, rest, grant); e != nil {
		if e.Code == wire.Draining {
			w.Header().Set("Connection", "close")
		}
		wire.WriteError(w, kind, *e)
		return
	}
	if upgrade {
		h.serveWebSocket(w, r, snap, up, rest, grant)
		return
	}
	// The answer streams from this frame, not from the attempt loop's: an
	// open stream's goroutine then needs half the stack (1,000 streams
	// add up; TestOpenStreamStack holds it).
	if ans := h.serveRequest(w, r, snap, up, rest, grant); ans != nil {
		defer h.buffered.Add(-ans.reserved)
		if ans.demoted && isEventStream(ans.resp) {
			h.deliverDemoted(w, r, ans, snap.Config.Daemon.BufferedLimit(), ans.reserved)
			return
		}
		h.deliver(w, ans)
	}
}

// admit checks what every request to the proxy must pass, and answers
// the health checks, a base URL's HEAD and /metrics: it reports whether
// the request goes on, with the grant of its scoped token (nil for the
// local token).
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, snap *Snapshot, kind state.Kind, known bool, name, rest string) (*Grant, bool) {
	// A browser page may reach a loopback port; DNS rebinding makes its
	// Host something else, and a cross-site request carries an Origin.
	if !loopbackHost(r.Host) {
		wire.WriteError(w, kind, wire.Error{Status: http.StatusForbidden, Code: wire.BadHost,
			Message: fmt.Sprintf("refused a request for host %q: the proxy only answers to 127.0.0.1, localhost or [::1]", r.Host)})
		return nil, false
	}
	if o := first(r.Header["Origin"]); o != "" && !allowedOrigin(o, snap.Config.Daemon.AllowedOrigins) {
		wire.WriteError(w, kind, wire.Error{Status: http.StatusForbidden, Code: wire.BadOrigin,
			Message: fmt.Sprintf("refused a browser request from origin %q; allow it with [daemon] allowed_origins in the keyfile", o)})
		return nil, false
	}
	switch r.URL.Path { // after the host and origin checks: a rebinding page must not read them
	case "/livez":
		h.serveLivez(w)
		return nil, false
	case "/healthz":
		h.serveHealthz(w)
		return nil, false
	}
	if r.Method == http.MethodHead && (rest == "" || rest == "/") && (known || name == "") {
		// A client checking that its base URL answers (Claude Code's
		// gateway check): nothing goes upstream.
		w.WriteHeader(http.StatusOK)
		return nil, false
	}
	grant, ok := h.authorized(r)
	if !ok {
		wire.WriteError(w, kind, wire.Error{Status: http.StatusUnauthorized, Code: wire.BadToken,
			Message: "missing or wrong local token: run the tool under 'llmkey exec -- TOOL', or send the value of LLMKEY_TOKEN ('llmkey env') as its API key"})
		return nil, false
	}
	// /metrics takes the same host, origin and token checks as a request.
	if r.URL.Path == "/metrics" && h.Metrics != nil {
		h.Metrics.ServeHTTP(w, r)
		return nil, false
	}
	return grant, true
}

// routeError is why a request cannot go to its route at all (nil: it
// can): the daemon draining, no such provider, a path that would leave
// its base URL, a token not issued for it, no keys.
func (h *Handler) routeError(snap *Snapshot, up *Upstream, known bool, name, rest string, grant *Grant) *wire.Error {
	switch {
	case h.draining.Load():
		return &wire.Error{Status: http.StatusServiceUnavailable, Code: wire.Draining, RetryAfter: time.Second,
			Message: "the daemon is shutting down; retry in a moment ('llmkey start' starts it again)"}
	case !known:
		return &wire.Error{Status: http.StatusNotFound, Code: wire.UnknownProvider,
			Message: fmt.Sprintf("no provider %q: the URL must start with /PROVIDER/, e.g. /openai/ ('llmkey status' lists providers)", name)}
	case dotSegments(rest):
		return &wire.Error{Status: http.StatusBadRequest, Code: wire.BadPath,
			Message: "refused a path with a '.' or '..' segment: it would leave the provider's base URL"}
	case grant != nil && grant.Only[name] == nil:
		return &wire.Error{Status: http.StatusForbidden, Code: wire.NotSelected,
			Message: fmt.Sprintf("this token was issued for other keys than %s's: run the tool under 'llmkey exec' with a selection that has a %s key", name, name)}
	case up.Pool == nil:
		return &wire.Error{Status: http.StatusServiceUnavailable, Code: wire.Code(rotate.NoKeys),
			Message: fmt.Sprintf("no keys for %s: add one with 'llmkey add %s'", name, name)}
	}
	return nil
}

// serveRequest reads a request's body, within the limits, and sends it
// through the attempt loop: it returns the successful answer, to be
// delivered, or nil once the client was answered.
func (h *Handler) serveRequest(w http.ResponseWriter, r *http.Request, snap *Snapshot, up *Upstream, rest string, grant *Grant) *answer {
	dc := snap.Config.Daemon
	kind := up.Kind
	if limit := dc.InFlightLimit(); h.inFlight.Load() > int64(limit) {
		wire.WriteError(w, kind, wire.Error{Status: http.StatusTooManyRequests, Code: wire.Overloaded, RetryAfter: time.Second,
			Message: fmt.Sprintf("more than %d requests in flight ([daemon] max_in_flight); retry in a moment", limit)})
		return nil
	}
	rc := http.NewResponseController(w)
	// A client that trickles its body must not hold its slot for ever.
	rc.SetReadDeadline(time.Now().Add(dc.ClientWait())) // the network's clock, not the daemon's
	body, reserved, err := h.readBody(r, dc.BodyLimit(), dc.BufferedLimit())
	var ans *answer
	defer func() {
		if ans == nil { // else the answer holds the body's reservation until it is delivered
			h.buffered.Add(-reserved)
		}
	}()
	rc.SetReadDeadline(time.Time{})
	switch {
	case errors.Is(err, errBuffersFull):
		wire.WriteError(w, kind, wire.Error{Status: http.StatusTooManyRequests, Code: wire.Overloaded, RetryAfter: time.Second,
			Message: fmt.Sprintf("request bodies of %d MiB are in memory already ([daemon] max_buffered_mb); retry in a moment", dc.BufferedLimit()>>20)})
		return nil
	case errors.Is(err, errBodyTooLarge):
		wire.WriteError(w, kind, wire.Error{Status: http.StatusRequestEntityTooLarge, Code: wire.BodyTooLarge,
			Message: fmt.Sprintf("the request body is larger than %d MiB; llmkey keeps the body to retry it on another key: send less, or raise [daemon] max_body_mb in the keyfile",
				dc.BodyLimit()>>20)})
		return nil
	case err != nil:
		h.Log.Info("client went away while sending its request", "provider", up.Name, "err", err)
		return nil
	}
	if ans = h.forward(w, r, snap, up, rest, body, grant); ans != nil {
		ans.reserved = reserved
	}
	return ans
}

// forward reads what the request is (its model, its conversation),
// adapts what goes upstream (usage asked for in a stream, a demotion),
// and sends it through the attempt loop.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, snap *Snapshot, up *Upstream, rest string, body []byte, grant *Grant) *answer {
	dc := snap.Config.Daemon
	info := wire.Inspect(up.Kind, rest, body)
	q := &request{r: r, snap: snap, grant: grant, model: info.Model, session: info.Session, pinned: info.Pinned, start: h.Clock.Now(),
		log: &reqLog{log: h.Log, provider: up.Name, model: info.Model, method: r.Method, path: r.URL.Path}}
	if q.session == "" {
		q.session = wire.SessionOf(r.Header)
	}
	if info.WantsUsage && dc.AddStreamUsage() {
		body = wire.WithStreamUsage(body, info)
	}
	demoted := up.DemoteToStream && info.Demotable(up.Kind, r.Method, rest)
	if demoted {
		body = wire.WithStream(body, info)
	}
	res := h.run(q, h.newRoundTrip(r, up, rest, body, demoted, snap.Secrets), up)
	ans := res.ans
	if ans == nil {
		h.answer(w, q, res)
		return nil
	}
	ans.demoted, ans.creates = demoted, wire.Creates(ans.up.Kind, r.Method, rest)
	ans.clientTimeout, ans.logLine = dc.ClientWait(), slog.LevelDebug
	if dc.LogRequests {
		ans.logLine = slog.LevelInfo
	}
	if q.pinned {
		ans.pins = q.session
	}
	return ans
}

var (
	errBodyTooLarge = errors.New("request body too large")
	errBuffersFull  = errors.New("request bodies in memory at their limit")
)

// A body's buffer grows with the data that arrives, not with what the
// client declares: bodyChunk first, doubling, and once bodyRest of a
// declared length has arrived, to all of it.
const (
	bodyChunk = 64 << 10
	bodyRest  = 1 << 20
)

// readBody reads the whole request body, up to limit: it is kept to send
// again to another key when the first one fails. Every byte it holds is
// reserved in the bodies' common budget first, and the reservation is
// the caller's to release, also on an error. The buffer grows with the
// data that arrives, to the declared length at most.
func (h *Handler) readBody(r *http.Request, limit, budget int64) (body []byte, reserved int64, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, 0, nil
	}
	if r.ContentLength > limit {
		return nil, 0, errBodyTooLarge
	}
	reserve := func(n int64) bool {
		if !h.reserve(n, budget) {
			return false
		}
		reserved += n
		return true
	}
	want := r.ContentLength // -1: unknown; the server stops a known one there
	if want >= 0 && !reserve(want) {
		return nil, reserved, errBuffersFull
	}
	for {
		if len(body) == cap(body) {
			// Double, from bodyChunk; past bodyRest of a declared
			// length, the rest at once (its copies would be garbage).
			n := max(int64(cap(body)), bodyChunk)
			if want >= 0 {
				n = min(n, want-int64(len(body)))
				if len(body) >= bodyRest {
					n = want - int64(len(body))
				}
			} else if !reserve(n) {
				return nil, reserved, errBuffersFull
			}
			if n == 0 { // all of it: what is left to read is the end
				var end [1]byte
				if m, rerr := r.Body.Read(end[:]); m == 0 && (rerr == io.EOF || rerr == nil) {
					return body, reserved, nil
				}
				return nil, reserved, errBodyTooLarge
			}
			grown := make([]byte, len(body), int64(len(body))+n)
			copy(grown, body)
			body = grown
		}
		m, rerr := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+m]
		if int64(len(body)) > limit {
			return nil, reserved, errBodyTooLarge
		}
		if rerr == io.EOF {
			if want >= 0 && int64(len(body)) < want {
				return nil, reserved, io.ErrUnexpectedEOF
			}
			return body, reserved, nil
		}
		if rerr != nil {
			return nil, reserved, rerr
		}
	}
}

// reserve takes n bytes in the budget that request bodies and messages
// held in memory share; false when that would go over it.
func (h *Handler) reserve(n, budget int64) bool {
	if h.buffered.Add(n) > budget {
		h.buffered.Add(-n)
		return false
	}
	return true
}

// Grant is what a scoped token allows: the keys of its selection, and
// the label its requests are counted under.
type Grant struct {
	ID    string
	Label string
	// Only lists the keys of each provider it may use.
	Only    map[string]map[string]bool
	Expires time.Time // zero: never
}

// authorized reports whether r carries the local token or a scoped one,
// in whichever place its SDK puts the key, and the grant of a scoped one
// (nil for the local token: every key). Every credential it carries must
// be the same token.
func (h *Handler) authorized(r *http.Request) (*Grant, bool) {
	c, ok := wire.Credential(r)
	if !ok {
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(c), []byte(h.Token)) == 1 {
		return nil, true
	}
	if h.Grants == nil {
		return nil, false
	}
	g, ok := h.Grants(c)
	if !ok || (!g.Expires.IsZero() && !h.Clock.Now().Before(g.Expires)) {
		return nil, false
	}
	return g, true
}

func (h *Handler) serveLivez(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"in_flight": h.inFlight.Load(), "draining": h.draining.Load()})
}

func (h *Handler) serveHealthz(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	if h.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"status": "draining"})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"status": "ok"})
}
