// SPDX-License-Identifier: MIT

package proxy

import (
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

// deliverDemoted answers a non-streaming request that went upstream as
// a stream (demote_to_stream): the stream is read whole, under the
// stream idle timeout, and the client gets the one JSON message it adds
// up to, as the non-streamed call would have answered it, or the error
// the stream ended with. A stream that breaks off is answered 502.
func (h *Handler) deliverDemoted(w http.ResponseWriter, ans *answer) {
	defer ans.close()
	ans.finishing.Store(true) // nothing reaches the client before the end: keep reading
	meter := wire.NewMeter(ans.resp.Header.Get("Content-Type"))
	var asm wire.Assembler
	idle := ans.up.StreamIdleTimeout
	timer := time.AfterFunc(idle, func() { ans.cancel(errStreamIdle) })
	defer timer.Stop()
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	buf := *bp
	var read int64
	var rerr error
	for {
		m, err := ans.resp.Body.Read(buf)
		timer.Reset(idle)
		meter.Write(buf[:m])
		asm.Write(buf[:m])
		read += int64(m)
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	status, body, aerr := asm.Result()
	if rerr == nil && aerr != nil {
		rerr = aerr
	}
	if rerr != nil && status == 0 {
		err := h.settle(ans, meter, read, rerr)
		wire.WriteError(w, ans.up.Kind, wire.Error{Status: http.StatusBadGateway, Code: wire.UpstreamIncomplete,
			Message: fmt.Sprintf("%s's stream for this request (demote_to_stream) broke off before the message was whole: %s; send it again",
				ans.up.Name, redact(err.Error(), ans.secrets))})
		return
	}
	var failed *rotate.Outcome
	if status >= 400 {
		// The error the stream ended with is the key's answer: it cools
		// or parks the key, or opens the circuit, as it would have had it
		// come as the status.
		body = []byte(redact(string(body), ans.secrets))
		o := wire.Classify(ans.up.Kind, status, ans.resp.Header, body, h.Clock.Now())
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
