package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
)

// roundTrip is the attempter of an HTTP request: what goes upstream is
// built once per provider, from a copy of the client's request, and sent
// once per attempt. The client's request is left as it came.
type roundTrip struct {
	h       *Handler
	r       *http.Request
	rest    string // the route on the primary
	body    []byte // as it goes to the primary
	demoted bool   // sent as a stream, to be answered as one JSON
	secrets []string
	out     outbound
}

// outbound is the request as it goes upstream, less the key.
type outbound struct {
	method, target string
	header         http.Header // the client's, less its auth and hop-by-hop headers
	body           []byte
}

// newRoundTrip readies r for up, its route rest and body as they go
// there.
func (h *Handler) newRoundTrip(r *http.Request, up *Upstream, rest string, body []byte, demoted bool, secrets []string) *roundTrip {
	rt := &roundTrip{h: h, r: r, rest: rest, body: body, demoted: demoted, secrets: secrets}
	rt.out = rt.outbound(up, rest, body)
	return rt
}

// outbound builds what every attempt to up sends: from a copy of the
// client's headers, less its credentials and the hop-by-hop headers.
func (rt *roundTrip) outbound(up *Upstream, rest string, body []byte) outbound {
	// A copy of the map; the values are the client's, capped so that an
	// append copies them (nothing on the way up writes into them: a
	// key's headers replace a value, a retry sends a deep copy).
	hdr := make(http.Header, len(rt.r.Header))
	copyHeader(hdr, rt.r.Header)
	removeHopHeaders(hdr)
	for _, name := range wire.InboundAuthHeaders {
		delete(hdr, name) // canonical already
	}
	if rt.demoted {
		// The stream is read here, not passed on: it must come plain.
		delete(hdr, "Accept-Encoding")
	}
	out := outbound{method: rt.r.Method, target: up.BaseURL + rest, header: hdr, body: body}
	if q := wire.StripCredentials(rt.r.URL.RawQuery); q != "" {
		out.target += "?" + q
	}
	return out
}

func (rt *roundTrip) send(ctx context.Context, up *Upstream, key Key, n int) *attempt {
	return rt.h.try(ctx, up, key, rt.out, n, rt.secrets)
}

func (rt *roundTrip) enter(primary, fb *Upstream, model string) string {
	rest, body := rt.rest, rt.body
	mapped := mappedModel(primary, model)
	if mapped != model {
		rest, body = wire.Rename(fb.Kind, rest, body, mapped)
	}
	rt.out = rt.outbound(fb, rest, body)
	return wire.ModelLabel(mapped)
}

// carries: a fallback's name for the model must not change where the
// route goes.
func (rt *roundTrip) carries(primary, fb *Upstream, model string) bool {
	mapped := mappedModel(primary, model)
	return mapped == model || wire.RenameSafe(fb.Kind, mapped)
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
	key.authorize(req.Header, up)

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
		return a
	}
	a.readRefusal(up, secrets)
	a.close()
	return a
}

// readRefusal reads a failed answer's body whole (error bodies are
// small), redacted: an answer that still holds the key, in another case
// or escaped, is withheld and said so in the provider's error shape.
func (a *attempt) readRefusal(up *Upstream, secrets []string) {
	resp, key := a.resp, a.key
	cleanHeader(resp.Header, key.Secret, secrets)
	// Read past the cut by a key's length, so that a key across it is
	// whole to redact.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+int64(len(key.Secret))))
	var withheld bool
	a.errBody, withheld = cleanErrorBody(up, resp.StatusCode, b, key.Secret, secrets)
	if withheld {
		resp.Header.Del("Content-Encoding")
		resp.Header.Set("Content-Type", "application/json")
	}
}

// maxErrorBody is how much of an error answer is read, and passed on.
const maxErrorBody = 1 << 20

var (
	errHeaderTimeout = errors.New("response header timeout")
	errDrainCut      = errors.New("cut at the end of the drain ([daemon] drain_timeout)")
)
