package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
)

// deliver streams a successful answer to the client and reports the key's
// outcome, with the tokens it used, when the stream ends. What it calls
// before and after the stream runs in frames of its own, so that the
// stack an open stream holds is only what the copy needs.
func (h *Handler) deliver(w http.ResponseWriter, ans *answer) {
	defer ans.close()
	writeHead(w, ans)
	meter := wire.NewMeter(first(ans.resp.Header["Content-Type"]))
	if ans.creates != "" {
		meter.KeepID()
	}
	written, err := h.stream(w, ans, meter)
	if err != nil && errors.Is(err, errClientGone) && meter.Finishing() {
		// The client hung up as the answer ended (at its terminal event,
		// or at finish_reason, before the usage chunk): read the rest,
		// for the usage, within a bound.
		h.drainAnswer(ans, meter)
	}
	if err != nil && meter.Done() {
		err = nil // its terminal event reached the client: it was whole
	}
	h.finish(w, ans, meter, written, err)
}

// writeHead sends the answer's status and headers, less the hop-by-hop
// ones, with the key that served it and the attempts it took.
func writeHead(w http.ResponseWriter, ans *answer) {
	hdr := w.Header()
	copyHeader(hdr, ans.resp.Header)
	removeHopHeaders(hdr)
	for k := range ans.resp.Trailer {
		hdr.Add("Trailer", k)
	}
	markAnswer(hdr, ans)
	w.WriteHeader(ans.resp.StatusCode)
}

// markAnswer says which key served the answer, on which provider (a
// fallback's, when one served it), in how many attempts.
func markAnswer(hdr http.Header, ans *answer) {
	// Canonical keys, set as they are: Set would canonicalize each again.
	hdr["X-Llmkey-Key"] = []string{ans.up.Name + "/" + ans.key.Name}
	hdr["X-Llmkey-Provider"] = []string{ans.up.Name}
	hdr["X-Llmkey-Attempts"] = []string{strconv.Itoa(ans.attempts)}
}

// finish ends a delivered answer: its trailers, the key's outcome and
// usage, and the log line. A stream cut off is counted as partial, with
// the tokens seen, and the client's connection is aborted so that it
// sees the break.
func (h *Handler) finish(w http.ResponseWriter, ans *answer, meter *wire.Meter, written int64, err error) {
	hdr := w.Header()
	for k, vv := range ans.resp.Trailer {
		hdr[http.TrailerPrefix+k] = vv
	}
	if h.settle(ans, meter, written, err) != nil {
		// Ending the response normally would tell the client the body is
		// complete. Abort the connection so that it sees the break.
		panic(http.ErrAbortHandler)
	}
}

// settle reports a delivered answer's outcome and usage to its key and
// the ledger, and binds what it created to its key. An answer cut off
// (err) is counted as partial, with the tokens seen; the log says so, or
// that it was served (written bytes). settle returns err in words for a
// person.
func (h *Handler) settle(ans *answer, meter *wire.Meter, written int64, err error) error {
	resp := ans.resp
	u, _ := meter.Usage()
	c := u.Counts()
	ans.lease.Done(ans.outcome, int(c.Tokens()))
	c.Requests, c.Successes = 1, 1
	if err != nil {
		c.Successes, c.Partial = 0, 1 // counted with the tokens seen before the break
	}
	h.record(ans.up, ans.key, ans.model, ans.label, c)
	if err == nil && ans.creates != "" {
		if id := meter.CreatedID(); id != "" {
			ans.up.Pool.Bind(ans.creates+id, ans.key.Name)
		}
	}
	if err == nil && ans.pins != "" {
		ans.up.Pool.Bind(ans.pins, ans.key.Name)
	}
	if err != nil {
		switch cause := context.Cause(ans.ctx); {
		case errors.Is(cause, errStreamIdle):
			err = fmt.Errorf("%w: nothing for %s ([daemon] stream_idle_timeout)", errStreamIdle, ans.up.StreamIdleTimeout)
		case errors.Is(cause, errDrainCut):
			err = errDrainCut
		}
		ans.log.Warn("stream ended early", "key", ans.key.Name, "status", resp.StatusCode, "bytes", written,
			"err", redact(err.Error(), ans.secrets), "ms", h.Clock.Now().Sub(ans.start).Milliseconds())
		return err
	}
	if ans.log.enabled(ans.logLine) {
		ans.log.write(ans.logLine, "request", "key", ans.up.Name+"/"+ans.key.Name, "status", resp.StatusCode, "attempts", ans.attempts, "bytes", written,
			"input_tokens", u.Input, "output_tokens", u.Output, "ms", h.Clock.Now().Sub(ans.start).Milliseconds())
	}
	return nil
}

var (
	errStreamIdle = errors.New("stream idle timeout")
	errClientGone = errors.New("the client went away")
)

// drainMax and drainTime bound what is read of an answer after its
// client went away.
const (
	drainMax  = 8 << 20
	drainTime = 10 * time.Second
)

// drainAnswer reads what is left of an answer into meter only, up to
// drainMax bytes and drainTime.
func (h *Handler) drainAnswer(ans *answer, meter io.Writer) {
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	buf := *bp
	stop := time.AfterFunc(drainTime, func() { ans.cancel(errStreamIdle) })
	defer stop.Stop()
	for read := 0; read < drainMax; {
		m, err := ans.resp.Body.Read(buf)
		meter.Write(buf[:m])
		read += m
		if err != nil {
			return
		}
	}
}

// streamBufs are the copy buffers of answers: pooled, so a request does
// not allocate one, and 4 KiB, so that a thousand open streams stay small
// (the upstream connection reads through a 4 KiB buffer anyway).
var streamBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// stream copies body to w, and to meter, flushing after every read so
// each event goes out as the upstream sends it. A body silent for longer
// than idle is cut, and so is a client that takes longer than
// clientTimeout to take one write.
func (h *Handler) stream(w http.ResponseWriter, ans *answer, meter *wire.Meter) (int64, error) {
	body, idle, clientTimeout, cancel := ans.resp.Body, ans.up.StreamIdleTimeout, ans.clientTimeout, ans.cancel
	rc := http.NewResponseController(w)
	timer := time.AfterFunc(idle, func() { cancel(errStreamIdle) })
	defer timer.Stop()
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		m, rerr := body.Read(buf)
		timer.Reset(idle)
		if m > 0 {
			meter.Write(buf[:m])
			if meter.Finishing() && !ans.finishing.Load() {
				ans.finishing.Store(true)
			}
			// A client that stopped reading must not hold the stream,
			// its slot and its key's lease for ever.
			rc.SetWriteDeadline(time.Now().Add(clientTimeout))
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, fmt.Errorf("%w: write: %w", errClientGone, werr)
			}
			n += int64(m)
			if ferr := rc.Flush(); ferr != nil {
				return n, fmt.Errorf("%w: flush: %w", errClientGone, ferr)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
