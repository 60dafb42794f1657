package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
)

// isEventStream reports whether resp is an event stream (a demoted
// request's upstream may still answer JSON: an error, or a proxy that
// ignores stream).
func isEventStream(resp *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt == "text/event-stream"
}

// errDemotedTimeout cuts a demoted stream that has not ended within
// response_header_timeout: its client is waiting for headers all along,
// as long as the non-streamed call would have let it.
var errDemotedTimeout = errors.New("demoted stream timeout")

// deliverDemoted answers a non-streaming request that went upstream as
// a stream (demote_to_stream): the stream is read to its end, and the
// client gets the one JSON message it adds up to, as the non-streamed
// call would have answered it, or the error the stream ended with.
//
// Nothing reaches the client before the end, so the stream is bounded on
// its own: by the stream idle timeout between reads and by
// response_header_timeout as a whole; by the client, whose going away
// ends it (unless the message is ending: its usage is still to come);
// and by memory. What the message takes is reserved, as it grows, in the
// budget request bodies take theirs from ([daemon] max_buffered_mb), of
// which it may take what its own body left, up to wire.MaxAssembled.
func (h *Handler) deliverDemoted(w http.ResponseWriter, r *http.Request, ans *answer, budget, body int64) {
	defer ans.close()
	meter := wire.NewMeter(ans.resp.Header.Get("Content-Type"))
	asm := wire.NewAssembler(budget-body, meter)
	held := reservation{h: h, budget: budget, body: body}
	defer held.release()
	read, err := h.readDemoted(ans, asm, meter, &held)
	if err != nil && r.Context().Err() != nil {
		// Its client went away: no one to answer.
		h.settle(ans, meter, read, fmt.Errorf("%w: %w", errClientGone, err))
		return
	}
	status, msg, aerr := asm.Result()
	if err == nil {
		err = aerr
	}
	if err != nil && status == 0 {
		h.demoteFailed(w, ans, meter, read, err, &held)
		return
	}
	h.answerDemoted(w, ans, meter, status, msg)
}

// readDemoted reads a demoted stream into asm until the message is
// whole, the stream ends, or it cannot go on (errBuffersFull: the
// budget has no room for the message as it grows).
func (h *Handler) readDemoted(ans *answer, asm *wire.Assembler, meter *wire.Meter, held *reservation) (int64, error) {
	idle := ans.up.StreamIdleTimeout
	timer := time.AfterFunc(idle, func() { ans.cancel(errStreamIdle) })
	defer timer.Stop()
	whole := time.AfterFunc(ans.up.ResponseHeaderTimeout, func() { ans.cancel(errDemotedTimeout) })
	defer whole.Stop()
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	buf := *bp
	var read int64
	for !asm.Ended() {
		m, err := ans.resp.Body.Read(buf)
		timer.Reset(idle)
		asm.Write(buf[:m])
		read += int64(m)
		if meter.Finishing() && !ans.finishing.Load() {
			ans.finishing.Store(true)
		}
		if !held.grow(asm.Footprint()) {
			return read, errBuffersFull
		}
		if err == io.EOF {
			return read, nil
		}
		if err != nil {
			return read, err
		}
	}
	return read, nil
}

// reservation is what a demoted answer holds of the memory budget
// (besides its request's body).
type reservation struct {
	h            *Handler
	budget, body int64
	n            int64
}

// grow reserves up to n bytes in all, and reports false when the budget
// has no room for them.
func (r *reservation) grow(n int64) bool {
	if n <= r.n {
		return true
	}
	if r.h.buffered.Add(n-r.n) > r.budget {
		r.h.buffered.Add(r.n - n)
		return false
	}
	r.n = n
	return true
}

func (r *reservation) release() {
	r.h.buffered.Add(-r.n)
	r.n = 0
}

// demoteFailed answers a demoted request whose stream gave no message:
// too large to assemble, no room for it in the memory budget, cut by a
// timeout, or broken off. The attempt is counted as partial, with the
// tokens seen.
func (h *Handler) demoteFailed(w http.ResponseWriter, ans *answer, meter *wire.Meter, read int64, err error, held *reservation) {
	name := ans.up.Name
	if errors.Is(context.Cause(ans.ctx), errDemotedTimeout) {
		err = fmt.Errorf("%w: it did not end within %s ([daemon] response_header_timeout)", errDemotedTimeout, ans.up.ResponseHeaderTimeout)
	}
	err = h.settle(ans, meter, read, err)
	e := wire.Error{Status: http.StatusBadGateway, Code: wire.UpstreamIncomplete,
		Message: fmt.Sprintf("%s's stream for this request (demote_to_stream) broke off before the message was whole: %s; send it again",
			name, redact(err.Error(), ans.secrets))}
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		budget, raise := "", ""
		if errors.Is(err, wire.ErrOverLimit) && held.budget-held.body < wire.MaxAssembled {
			budget, raise = fmt.Sprintf(", with [daemon] max_buffered_mb at %d MiB", held.budget>>20), ", or raise max_buffered_mb"
		}
		// Sent again, it would be as large: the Anthropic SDKs heed this.
		w.Header().Set("X-Should-Retry", "false")
		e.Code = wire.AnswerTooLarge
		e.Message = fmt.Sprintf("%s's answer to this request (demote_to_stream) is %s%s; ask for it with \"stream\": true%s", name, err, budget, raise)
	case errors.Is(err, errBuffersFull):
		e = wire.Error{Status: http.StatusTooManyRequests, Code: wire.Overloaded, RetryAfter: time.Second,
			Message: fmt.Sprintf("request bodies and demoted answers of %d MiB are in memory already ([daemon] max_buffered_mb); retry in a moment",
				held.budget>>20)}
	case errors.Is(err, errDemotedTimeout):
		e = wire.Error{Status: http.StatusGatewayTimeout, Code: wire.UpstreamTimeout,
			Message: fmt.Sprintf("%s's stream for this request (demote_to_stream) did not end within %s ([daemon] response_header_timeout, which a demoted answer is held to as a whole)",
				name, ans.up.ResponseHeaderTimeout)}
	}
	wire.WriteError(w, ans.up.Kind, e)
}

// answerDemoted gives the client the message, or the stream's error
// event, which is the key's answer: it cools or parks the key, or opens
// the circuit, as it would have had it come as the status, and a key
// it holds, written in any way, is withheld as in any error answer.
func (h *Handler) answerDemoted(w http.ResponseWriter, ans *answer, meter *wire.Meter, status int, body []byte) {
	var failed *rotate.Outcome
	if status >= 400 {
		cleanHeader(ans.resp.Header, ans.key.Secret, ans.secrets)
		body, _ = cleanErrorBody(ans.up, status, body, ans.key.Secret, ans.secrets)
		o := wire.Classify(ans.up.Kind, status, ans.resp.Header, body, h.Clock.Now())
		if leaks(o.Reason, ans.key.Secret) {
			o.Reason = fmt.Sprintf("%d %s", o.Status, o.Class)
		}
		failed = &o
	}
	hdr := w.Header()
	copyHeader(hdr, ans.resp.Header)
	removeHopHeaders(hdr)
	hdr.Del("Content-Encoding") // the stream was decoded; the JSON is ours
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	markAnswer(hdr, ans)
	w.WriteHeader(status)
	written, _ := w.Write(body)
	if failed != nil {
		h.settleFailure(ans.up, ans.key, ans.lease, ans.model, ans.label, *failed)
		ans.log.Info("upstream error in a demoted stream", "key", ans.up.Name+"/"+ans.key.Name, "status", status, "class", failed.Class.String())
		return
	}
	h.settle(ans, meter, int64(written), nil)
}
