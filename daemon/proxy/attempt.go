package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// The attempt loop: one request (an HTTP request or a WebSocket
// handshake) goes to a key its provider's pool picks and, as
// rotate.Decide says after each failed attempt or denial, to the next
// key, or waits for one to free, or falls over to the next provider of
// its chain, or is answered. Nothing has reached the client until then,
// so a retry is safe. An attempter makes each attempt; the loop makes no
// decision of its own.

// An attempter is one way of reaching an upstream with a key: an HTTP
// round trip (roundTrip) or a WebSocket dial (socketDial).
type attempter interface {
	// send makes attempt n of the request with key on up. A failed
	// answer's body is read whole and redacted.
	send(ctx context.Context, up *Upstream, key Key, n int) *attempt
	// enter readies the request for the fallback fb of primary, its
	// model renamed as primary's fallback_models says: model is the
	// name the client asked for, and enter returns its label on fb.
	enter(primary, fb *Upstream, model string) string
	// carries reports whether the request can go to primary's fallback
	// fb at all, its model renamed there.
	carries(primary, fb *Upstream, model string) bool
}

// attempt is one try of a request on one key.
type attempt struct {
	key     Key
	resp    *http.Response
	conn    *websocket.Conn // a WebSocket's, once the upstream accepted it
	errBody []byte          // a failed answer's body, read whole and redacted
	err     error           // no answer at all
	timeout bool            // no response headers in time
	// ctx bounds the attempt; its cause tells an idle stream apart.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// finishing is set once the answer said it is ending: the client
	// going away then no longer ends the attempt, whose usage is still
	// to come.
	finishing atomic.Bool
	unwatch   func() bool // stops the client's going away from reaching it
}

// close ends the attempt: its body, and with it the upstream request.
func (a *attempt) close() {
	if a.resp != nil && a.resp.Body != nil {
		a.resp.Body.Close()
	}
	if a.cancel != nil {
		a.cancel(nil)
	}
	if a.unwatch != nil {
		a.unwatch()
	}
}

// answer is a successful attempt, on its way to the client.
type answer struct {
	*attempt
	up       *Upstream
	secrets  []string
	lease    rotate.Lease
	outcome  rotate.Outcome
	attempts int
	model    string
	label    string // the scoped token's, for usage
	// creates is the namespace of what a success creates ("": nothing
	// a later request refers to); pins, the stored state a success shows
	// its key has; demoted, that the request went up as a stream to be
	// answered as one JSON.
	creates string
	pins    string
	demoted bool
	log     *reqLog
	start   time.Time
	logLine slog.Level // of the line that says it was served
	// clientTimeout bounds each write to the client.
	clientTimeout time.Duration
	// reserved is the request body's share of max_buffered_mb, held
	// until the answer is delivered.
	reserved int64
}

// request is what the attempt loop knows of the client's request.
type request struct {
	r       *http.Request
	snap    *Snapshot
	grant   *Grant
	model   string // as the client named it, labelled
	session string // the conversation it belongs to ("": none)
	pinned  bool   // its state is stored with one key upstream
	tried   []string
	log     *reqLog
	start   time.Time
}

// result is what the attempt loop came to: a success to deliver, or a
// refusal to answer (why no key of up could take it, or its last failed
// attempt, after n attempts in all); neither when the client went away.
type result struct {
	ans    *answer
	up     *Upstream
	denied *rotate.Denial
	failed *attempt
	n      int
}

// answer answers a request the attempt loop could not serve.
func (h *Handler) answer(w http.ResponseWriter, q *request, res result) {
	switch {
	case res.denied != nil:
		h.answerDenied(w, res.up, res.denied, res.failed, res.n, q.snap.Secrets, q.log, q.start)
	case res.failed != nil:
		h.answerFailed(w, res.up, res.failed, res.n, q.snap.Secrets, q.log, q.start)
	}
}

// run is the attempt loop. It carries out what rotate.Decide says until
// an attempt succeeds or the request is to be answered.
func (h *Handler) run(q *request, at attempter, up *Upstream) result {
	c := h.chain(q, up, at)
	var last *attempt
	n := 0 // attempts sent, on every provider
	for {
		lease, den := c.up.Pool.Take(rotate.Ask{Model: c.model, Tried: c.tried, Only: c.only, Session: q.session, Pinned: q.pinned})
		if den != nil {
			switch d := c.decide(rotate.Turn{Attempts: c.n, Denied: den}); d.Step {
			case rotate.Wait, rotate.WaitPrimary:
				if !waitForKey(q.r.Context(), den, d.Until.Sub(h.Clock.Now())) {
					return result{}
				}
			case rotate.FallOver:
				c.fallOver(at)
				last = nil
			default:
				c.answered()
				return result{up: c.up, denied: den, failed: last, n: n}
			}
			continue
		}
		key, ok := h.leased(c.up, lease)
		if !ok {
			lease.Cancel()
			c.tried = append(c.tried, lease.Name)
			continue
		}
		n++
		c.n++
		a := at.send(q.r.Context(), c.up, key, c.n)
		if q.r.Context().Err() != nil {
			h.clientGone(q, c, key, lease, a)
			return result{}
		}
		o := h.outcome(c.up, key, a)
		if o.Class == rotate.Success {
			c.served()
			return result{ans: &answer{attempt: a, up: c.up, secrets: q.snap.Secrets, lease: lease, outcome: o, attempts: n,
				model: c.model, label: c.label, log: q.log, start: q.start}}
		}
		unseen := q.pinned && lease.Affinity == rotate.NewSession
		h.failed(c, q, key, lease, o, unseen)
		last = a
		d := c.decide(rotate.Turn{Attempts: c.n, Failed: &o, Unseen: unseen})
		q.log.Info("attempt failed", "key", c.up.Name+"/"+key.Name, "attempt", n, "class", o.Class.String(), "status", o.Status,
			"reason", redact(o.Reason, q.snap.Secrets), "wait", o.Wait, "retry", d.Step == rotate.Retry)
		switch d.Step {
		case rotate.Retry:
			h.Events.Retried(c.up.Name)
		case rotate.FallOver:
			c.fallOver(at)
			last = nil
		default:
			c.answered()
			return result{up: c.up, failed: a, n: n}
		}
	}
}

// leased is the key a lease names: from the snapshot the request began
// with, or, for a key a reload added since, from the newest.
func (h *Handler) leased(up *Upstream, lease rotate.Lease) (Key, bool) {
	if key, ok := up.Keys[lease.Name]; ok {
		return key, true
	}
	if u := h.Snapshot().Providers[up.Name]; u != nil {
		key, ok := u.Keys[lease.Name]
		return key, ok
	}
	return Key{}, false
}

// clientGone settles an attempt whose client went away before the
// upstream answered: nothing is judged of the key.
func (h *Handler) clientGone(q *request, c *chain, key Key, lease rotate.Lease, a *attempt) {
	lease.Cancel()
	if a.conn != nil {
		a.conn.Close()
	}
	a.close()
	h.record(c.up, key, c.model, c.label, failedAttempt("client-canceled"))
	q.log.Info("client went away before the upstream answered", "key", key.Name)
}

// outcome classifies an attempt's answer in its provider's wire format;
// a reason that would quote the key is cut to its status and class.
func (h *Handler) outcome(up *Upstream, key Key, a *attempt) rotate.Outcome {
	switch {
	case a.err != nil:
		return rotate.TransportOutcome(transportReason(a, up))
	case a.resp.StatusCode >= 400:
		o := wire.Classify(up.Kind, a.resp.StatusCode, a.resp.Header, a.errBody, h.Clock.Now())
		if leaks(o.Reason, key.Secret) { // it quotes the provider's code
			o.Reason = fmt.Sprintf("%d %s", o.Status, o.Class)
		}
		return o
	}
	return wire.Classify(up.Kind, a.resp.StatusCode, a.resp.Header, nil, h.Clock.Now())
}

// failed settles an attempt on the chain's provider that failed, and
// keeps the request off the keys it must not take again. Stored state
// missing on a key the strategy guessed is no longer looked for there.
func (h *Handler) failed(c *chain, q *request, key Key, lease rotate.Lease, o rotate.Outcome, unseen bool) {
	h.settleFailure(c.up, key, lease, c.model, c.label, o)
	if o.MissingState && unseen {
		c.up.Pool.Unbind(q.session, key.Name)
	}
	if o.Excludes() {
		c.tried = append(c.tried, key.Name)
	}
}

// settleFailure reports a failed attempt's outcome to its key, the
// ledger and metrics.
func (h *Handler) settleFailure(up *Upstream, key Key, lease rotate.Lease, model, label string, o rotate.Outcome) {
	lease.Done(o, 0)
	h.record(up, key, model, label, failedAttempt(o.Class.String()))
	if o.Class.SetsAside() != rotate.Ready {
		h.Events.SetAside(up.Name, key.Name, o.Class)
	}
}

// record counts one attempt's outcome on a key, model and label, today.
func (h *Handler) record(up *Upstream, key Key, model, label string, c state.Counts) {
	h.Usage.Add(h.Clock.Now(), state.UsageKey{Provider: up.Name, Key: key.Name, Fingerprint: key.Fingerprint, Model: model, Label: label}, c)
}

// selection is the keys of provider that g may use (nil: every key) and
// its label; the local token's grant is nil.
func (g *Grant) selection(provider string) (map[string]bool, string) {
	if g == nil {
		return nil, ""
	}
	return g.Only[provider], g.Label
}

// failedAttempt is the count of one attempt that failed with class.
func failedAttempt(class string) state.Counts {
	return state.Counts{Requests: 1, Failures: map[string]int64{class: 1}}
}

func transportReason(a *attempt, up *Upstream) string {
	if a.timeout {
		return fmt.Sprintf("no response headers within %s", up.ResponseHeaderTimeout)
	}
	return rootCause(a.err)
}

// waitForKey waits until a key may be free: for wait, or until the pool
// says one came back. It reports false when ctx ended first.
func waitForKey(ctx context.Context, den *rotate.Denial, wait time.Duration) bool {
	timer := time.NewTimer(max(wait, time.Millisecond))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-den.Wake:
	case <-ctx.Done():
		return false
	}
	return true
}
