package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// outbound is the request as it goes upstream, less the key: built once,
// from a copy of the client's headers, and sent once per attempt.
type outbound struct {
	method, target string
	header         http.Header // the client's, less its auth and hop-by-hop headers
	body           []byte
}

// newOutbound builds what every attempt of r sends to up: the client's
// request is left as it came.
func newOutbound(r *http.Request, up *Upstream, rest string, body []byte) outbound {
	hdr := r.Header.Clone()
	removeHopHeaders(hdr)
	for _, name := range wire.InboundAuthHeaders {
		delete(hdr, name) // canonical already
	}
	out := outbound{method: r.Method, target: up.BaseURL + rest, header: hdr, body: body}
	if q := stripKeyParam(r.URL.RawQuery); q != "" {
		out.target += "?" + q
	}
	return out
}

// attempt is one try of a request on one key.
type attempt struct {
	key     Key
	resp    *http.Response
	errBody []byte // a failed answer's body, read whole and redacted
	err     error  // no answer at all
	timeout bool   // no response headers in time
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
	if a.resp != nil {
		a.resp.Body.Close()
	}
	a.cancel(nil)
	a.unwatch()
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
}

// forward sends the request to a key the provider's pool picks and, as
// rotate.Decide says after each failed attempt or denial, to the next
// key, or waits for one to free, or answers. A request of a conversation
// goes to the conversation's key while it can serve. When no key of the
// provider can serve, and it names fallbacks, the request waits for one
// up to primary_wait, then goes to the first fallback with keys (the
// model renamed as fallback_models says), and so on. Nothing has reached
// the client until then, so a retry is safe. A failure is answered here;
// a success is returned for deliver to stream through untouched: from
// its first byte on there is no retry.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, snap *Snapshot, up *Upstream, rest string, body []byte, grant *Grant) *answer {
	start := h.Clock.Now()
	dc := snap.Config.Daemon
	info := wire.Inspect(up.Kind, rest, body)
	model := info.Model
	session, pinned := info.Session, info.Pinned
	if session == "" {
		session = wire.SessionOf(r.Header)
	}
	if info.WantsUsage && dc.AddStreamUsage() {
		body = wire.WithStreamUsage(body, info)
	}
	demoted := up.DemoteToStream && info.Demotable(up.Kind, r.Method, rest)
	if demoted {
		body = wire.WithStream(body, info)
		// The stream is read here, not passed on: it must come plain.
		r.Header.Del("Accept-Encoding")
	}
	log := &reqLog{log: h.Log, provider: up.Name, model: model, method: r.Method, path: r.URL.Path}
	only, label := grant.selection(up.Name)
	fc := h.chain(snap, up, grant, pinned)
	l := leg{up: up, model: model, only: only, out: newOutbound(r, up, rest, body),
		budget: rotate.Budget{Start: start, MaxAttempts: dc.Attempts(), RetryDeadline: dc.RetryDeadline.Or(state.DefaultRetryDeadline), MaxWait: dc.WaitLimit()}}
	move := func(fb *Upstream) {
		l.enter(r, up, fb, rest, body, model, grant, h.Clock.Now())
		log.Info("falling over", "from", up.Name, "to", fb.Name, "model", l.model)
	}

	var last *attempt
	n := 0 // attempts sent, on every provider
	for {
		lease, den := l.up.Pool.Take(rotate.Ask{Model: l.model, Tried: l.tried, Only: l.only, Session: session, Pinned: pinned})
		if den != nil {
			now := h.Clock.Now()
			switch st, fb := fc.denied(r.Context(), l.up, den, now); st {
			case chainGone:
				return nil
			case chainWaited:
				continue
			case chainMoved:
				move(fb)
				last = nil
				continue
			}
			if d := rotate.Decide(l.budget, l.n, nil, den, now); d.Step == rotate.Wait {
				if !waitForKey(r.Context(), den, d.Until.Sub(now)) {
					return nil
				}
				continue
			}
			fc.answered(l.up)
			h.answerDenied(w, l.up, den, last, n, snap.Secrets, log, start)
			return nil
		}
		cur := l.up
		key, ok := cur.Keys[lease.Name]
		if !ok { // removed by a reload since this request began
			if u := h.Snapshot().Providers[cur.Name]; u != nil {
				key, ok = u.Keys[lease.Name]
			}
		}
		if !ok {
			lease.Cancel()
			l.tried = append(l.tried, lease.Name)
			continue
		}

		n++
		l.n++
		a := h.try(r.Context(), cur, key, l.out, l.n, snap.Secrets)
		if r.Context().Err() != nil {
			lease.Cancel()
			a.close()
			h.record(cur, key, l.model, label, failedAttempt("client-canceled"))
			log.Info("client went away before the upstream answered", "key", key.Name)
			return nil
		}
		var o rotate.Outcome
		switch {
		case a.err != nil:
			o = rotate.TransportOutcome(transportReason(a, cur))
		case a.resp.StatusCode >= 400:
			o = wire.Classify(cur.Kind, a.resp.StatusCode, a.resp.Header, a.errBody, h.Clock.Now())
			if leaks(o.Reason, key.Secret) { // it quotes the provider's code
				o.Reason = fmt.Sprintf("%d %s", o.Status, o.Class)
			}
		default:
			o = wire.Classify(cur.Kind, a.resp.StatusCode, a.resp.Header, nil, h.Clock.Now())
			fc.served(cur)
			ans := &answer{attempt: a, up: cur, secrets: snap.Secrets, lease: lease, outcome: o, attempts: n,
				model: l.model, label: label, log: log, start: start, logLine: slog.LevelDebug, clientTimeout: dc.ClientTimeout.Or(state.DefaultClientTimeout),
				creates: wire.Creates(cur.Kind, r.Method, rest), demoted: demoted}
			if pinned {
				ans.pins = session
			}
			if dc.LogRequests {
				ans.logLine = slog.LevelInfo
			}
			return ans
		}
		if o.MissingState && pinned && lease.Affinity == rotate.NewSession && l.n < l.budget.MaxAttempts {
			// A reference llmkey had not seen (made before a restart, or
			// by another tool) that this key's organisation does not
			// have: look for it on the other keys.
			cur.Pool.Unbind(session, key.Name)
			l.tried = append(h.failed(cur, key, lease, l.model, label, o, l.tried), key.Name)
			last = a
			log.Info("stored state not on this key; trying the next", "key", cur.Name+"/"+key.Name, "attempt", n)
			h.Events.Retried(cur.Name)
			continue
		}
		l.tried = h.failed(cur, key, lease, l.model, label, o, l.tried)
		last = a
		d := rotate.Decide(l.budget, l.n, &o, nil, h.Clock.Now())
		log.Info("attempt failed", "key", cur.Name+"/"+key.Name, "attempt", n, "class", o.Class.String(), "status", o.Status,
			"reason", redact(o.Reason, snap.Secrets), "wait", o.Wait, "retry", d.Step == rotate.Retry)
		if d.Step != rotate.Retry {
			if fb := fc.failed(o); fb != nil {
				move(fb)
				last = nil
				continue
			}
			fc.answered(cur)
			h.answerFailed(w, cur, a, n, snap.Secrets, log, start)
			return nil
		}
		h.Events.Retried(cur.Name)
	}
}

// What a fallback chain did, for metrics: a request began waiting for
// its primary, the primary served it after all, a fallback took it, or
// the fallbacks could not serve it either.
const (
	Entered   = "entered"
	Recovered = "recovered"
	FellBack  = "fell_back"
	Exhausted = "exhausted"
)

// leg is the provider a request is on now (its own, or a fallback), with
// what it sends there and what it tried.
type leg struct {
	up     *Upstream
	model  string
	only   map[string]bool
	out    outbound
	budget rotate.Budget
	tried  []string
	n      int // attempts on this provider
}

// enter moves the request to fb: the model renamed, its attempts and
// waits counted afresh.
func (l *leg) enter(r *http.Request, primary, fb *Upstream, rest string, body []byte, model string, grant *Grant, now time.Time) {
	mapped := model
	if m, ok := primary.FallbackModels[model]; ok {
		mapped = m
	}
	if mapped != model {
		if fb.Kind == state.KindGemini {
			rest = wire.WithModelPath(rest, mapped)
		} else {
			body = wire.WithModel(body, wire.Inspect(fb.Kind, rest, body), mapped)
		}
	}
	l.only, _ = grant.selection(fb.Name)
	l.up, l.model, l.tried, l.n = fb, wire.ModelLabel(mapped), nil, 0
	l.out = newOutbound(r, fb, rest, body)
	l.budget.Start = now
}

// chain is a request's way along its provider's fallbacks: it waits for
// the primary up to primary_wait, then goes to each fallback in turn, and
// tells metrics what came of it.
type chain struct {
	h       *Handler
	primary *Upstream
	legs    []*Upstream // the fallbacks not tried yet
	until   time.Time   // the end of the wait for the primary, once it began
	entered bool
}

// What chain.denied did.
const (
	chainStay   = iota // nothing: there is no fallback left
	chainWaited        // waited for the primary: ask it again
	chainMoved         // on to the fallback it returns
	chainGone          // the client went away while it waited
)

// chain is up's fallbacks that may serve this request: those with keys,
// and with keys in the token's selection. A conversation whose state is
// stored upstream has none: only its key can read that.
func (h *Handler) chain(snap *Snapshot, up *Upstream, grant *Grant, pinned bool) chain {
	c := chain{h: h, primary: up}
	if pinned {
		return c
	}
	for _, name := range up.Fallback {
		fb := snap.Providers[name]
		if fb == nil || fb.Pool == nil || fb.Kind != up.Kind || (grant != nil && grant.Only[name] == nil) {
			continue
		}
		c.legs = append(c.legs, fb)
	}
	return c
}

// denied is what a request does when no key of cur can take it: on the
// primary, wait for a key up to primary_wait (at once on when none can
// come back by itself: all parked, disabled, none for the model), then
// go on to the next fallback; on a fallback, go on at once.
func (c *chain) denied(ctx context.Context, cur *Upstream, den *rotate.Denial, now time.Time) (int, *Upstream) {
	if len(c.legs) == 0 {
		return chainStay, nil
	}
	if cur == c.primary {
		if c.until.IsZero() {
			c.until = now.Add(c.primary.PrimaryWait)
			c.enter()
		}
		if (!den.Until.IsZero() || den.OnRelease) && now.Before(c.until) {
			until := c.until
			if !den.Until.IsZero() && den.Until.Before(until) {
				until = den.Until
			}
			if !waitForKey(ctx, den, until.Sub(now)) {
				return chainGone, nil
			}
			return chainWaited, nil
		}
	}
	return chainMoved, c.next()
}

// failed is the fallback to go on to after an answer of class o that no
// other key of this provider can better (nil: none). An overload is not
// retried on a sibling key, since every key would get it, but another
// provider may serve.
func (c *chain) failed(o rotate.Outcome) *Upstream {
	if len(c.legs) == 0 || !(o.Class.Retryable() || o.Class == rotate.Overloaded) {
		return nil
	}
	return c.next()
}

func (c *chain) next() *Upstream {
	c.enter()
	fb := c.legs[0]
	c.legs = c.legs[1:]
	return fb
}

func (c *chain) enter() {
	if !c.entered {
		c.entered = true
		c.h.Events.Fallback(c.primary.Name, c.legs[0].Name, Entered)
	}
}

// served counts a success on cur: a fallback's, or the primary's after
// the chain began.
func (c *chain) served(cur *Upstream) {
	switch {
	case cur != c.primary:
		c.h.Events.Fallback(c.primary.Name, cur.Name, FellBack)
	case c.entered:
		c.h.Events.Fallback(c.primary.Name, "", Recovered)
	}
}

// answered counts a request answered without success: on a fallback,
// the chain was exhausted.
func (c *chain) answered(cur *Upstream) {
	if cur != c.primary {
		c.h.Events.Fallback(c.primary.Name, cur.Name, Exhausted)
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

// try sends one attempt with key. A failed answer's body is read whole
// (error bodies are small) and redacted, for classifying and passing on.
func (h *Handler) try(ctx context.Context, up *Upstream, key Key, out outbound, n int, secrets []string) *attempt {
	a := &attempt{key: key}
	// Under the drain's cut, and not the client's request: the client
	// going away ends the attempt only while its answer is not ending.
	a.ctx, a.cancel = context.WithCancelCause(h.cutContext())
	a.unwatch = context.AfterFunc(ctx, func() {
		if !a.finishing.Load() {
			a.cancel(context.Cause(ctx))
		}
	})
	var rd io.Reader
	if out.body != nil {
		rd = bytes.NewReader(out.body)
	}
	req, err := http.NewRequestWithContext(a.ctx, out.method, out.target, rd)
	if err != nil {
		a.err = err
		a.close()
		return a
	}
	// The first attempt sends the copy made for the request; a later one
	// a copy of it, since the transport may still be reading the first's.
	req.Header = out.header
	if n > 1 {
		req.Header = out.header.Clone()
	}
	req.Header[up.authHeader] = key.auth
	if up.Kind == state.KindOpenAI {
		// The organization and project of this key, and no other's.
		setOrDelete(req.Header, "Openai-Organization", key.Organization)
		setOrDelete(req.Header, "Openai-Project", key.Project)
	}

	headerTimer := time.AfterFunc(up.ResponseHeaderTimeout, func() { a.cancel(errHeaderTimeout) })
	sent := h.Clock.Now()
	resp, err := h.Transport.RoundTrip(req)
	headerTimer.Stop()
	if err != nil {
		a.timeout = errors.Is(context.Cause(a.ctx), errHeaderTimeout)
		a.err = err
		a.close()
		return a
	}
	up.Latency.Observe(h.Clock.Now().Sub(sent).Seconds())
	a.resp = resp
	if resp.StatusCode < 400 {
		maskHeader(resp.Header, key.Secret) // an answer's own headers: the key written plainly
	}
	if resp.StatusCode >= 400 {
		cleanHeader(resp.Header, key.Secret, secrets)
		// Read past the cut by a key's length, so that a key across it
		// is whole to redact.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+int64(len(key.Secret))))
		a.close()
		var withheld bool
		a.errBody, withheld = cleanErrorBody(up, resp.StatusCode, b, key.Secret, secrets)
		if withheld {
			resp.Header.Del("Content-Encoding")
			resp.Header.Set("Content-Type", "application/json")
		}
	}
	return a
}

// maxErrorBody is how much of an error answer is read, and passed on.
const maxErrorBody = 1 << 20

var (
	errHeaderTimeout = errors.New("response header timeout")
	errDrainCut      = errors.New("cut at the end of the drain ([daemon] drain_timeout)")
)

func transportReason(a *attempt, up *Upstream) string {
	if a.timeout {
		return fmt.Sprintf("no response headers within %s", up.ResponseHeaderTimeout)
	}
	return rootCause(a.err)
}

func setOrDelete(h http.Header, key, value string) {
	if value == "" {
		delete(h, key)
	} else {
		h[key] = []string{value}
	}
}

// failed settles an attempt that failed: the lease, the counts, the event,
// and the keys not to choose again (returned).
func (h *Handler) failed(up *Upstream, key Key, lease rotate.Lease, model, label string, o rotate.Outcome, tried []string) []string {
	lease.Done(o, 0)
	h.record(up, key, model, label, failedAttempt(o.Class.String()))
	if o.Class.SetsAside() != "" {
		h.Events.SetAside(up.Name, key.Name, o.Class)
	}
	if o.Class == rotate.ServerError || o.Class == rotate.Transport {
		// Nothing keeps this key from being chosen again at once; the
		// other failures cool or park it, which also lets a request that
		// waits try it again once it is back.
		tried = append(tried, key.Name)
	}
	return tried
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
