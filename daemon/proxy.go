package daemon

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// ServeHTTP is the proxy: /livez and /healthz, then
// /<provider>/<rest> -> <base_url>/<rest> with the key swapped in.
func (d *Daemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/livez":
		d.serveLivez(w)
		return
	case "/healthz":
		d.serveHealthz(w)
		return
	}

	name, rest := splitRoute(r.URL.EscapedPath())
	snap := d.snap.Load()
	up, known := snap.provider(name)
	kind := state.KindOpenAI
	if known {
		kind = up.Kind
	}

	// A browser page may reach a loopback port; DNS rebinding makes its
	// Host something else, and a cross-site request carries an Origin.
	if !loopbackHost(r.Host) {
		writeError(w, kind, proxyError{status: http.StatusForbidden, code: codeBadHost,
			message: fmt.Sprintf("refused a request for host %q: the proxy only answers to 127.0.0.1, localhost or [::1]", r.Host)})
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !allowedOrigin(o, snap.cfg.Daemon.AllowedOrigins) {
		writeError(w, kind, proxyError{status: http.StatusForbidden, code: codeBadOrigin,
			message: fmt.Sprintf("refused a browser request from origin %q; allow it with [daemon] allowed_origins in the keyfile", o)})
		return
	}
	if !d.authorized(r) {
		writeError(w, kind, proxyError{status: http.StatusUnauthorized, code: codeBadToken,
			message: "missing or wrong local token: run the tool under 'llmkey exec -- TOOL', or send the value of LLMKEY_TOKEN ('llmkey env') as its API key"})
		return
	}
	// /metrics takes the same host, origin and token checks as a request.
	if r.URL.Path == "/metrics" {
		d.metrics.handler.ServeHTTP(w, r)
		return
	}
	// Counted before the draining check, so that a drain that sees zero
	// in flight cannot miss a request that is just starting.
	d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	if d.draining.Load() {
		w.Header().Set("Connection", "close")
		writeError(w, kind, proxyError{status: http.StatusServiceUnavailable, code: codeDraining, retryAfter: time.Second,
			message: "the daemon is shutting down; retry in a moment ('llmkey start' starts it again)"})
		return
	}
	if !known {
		writeError(w, kind, proxyError{status: http.StatusNotFound, code: codeUnknownProvider,
			message: fmt.Sprintf("no provider %q: the URL must start with /PROVIDER/, e.g. /openai/ ('llmkey status' lists providers)", name)})
		return
	}

	if up.rot == nil {
		writeError(w, kind, proxyError{status: http.StatusServiceUnavailable, code: codeNoKeys,
			message: fmt.Sprintf("no keys for %s: add one with 'llmkey add %s'", name, name)})
		return
	}
	if limit := snap.cfg.Daemon.InFlightLimit(); d.inFlight.Load() > int64(limit) {
		writeError(w, kind, proxyError{status: http.StatusTooManyRequests, code: codeOverloaded, retryAfter: time.Second,
			message: fmt.Sprintf("more than %d requests in flight ([daemon] max_in_flight); retry in a moment", limit)})
		return
	}
	body, err := readBody(r, snap.cfg.Daemon.BodyLimit())
	if errors.Is(err, errBodyTooLarge) {
		writeError(w, kind, proxyError{status: http.StatusRequestEntityTooLarge, code: codeBodyTooLarge,
			message: fmt.Sprintf("the request body is larger than %d MiB; llmkey keeps the body to retry it on another key: send less, or raise [daemon] max_body_mb in the keyfile",
				snap.cfg.Daemon.BodyLimit()>>20)})
		return
	}
	if err != nil {
		d.log.Info("client went away while sending its request", "provider", name, "err", err)
		return
	}
	// The answer streams from this frame, not from forward's: an open
	// stream's goroutine then needs half the stack (1,000 streams add up).
	if ans := d.forward(w, r, snap, up, rest, body); ans != nil {
		d.deliver(w, ans)
	}
}

var errBodyTooLarge = errors.New("request body too large")

// readBody reads the whole request body, up to limit: it is kept to send
// again to another key when the first one fails.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	if r.ContentLength >= 0 { // the server stops the body at its length
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	buf := bytes.NewBuffer(make([]byte, 0, bytes.MinRead))
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errBodyTooLarge
	}
	return buf.Bytes(), nil
}

// reqInfo is what the proxy reads of a request: the model it asks for,
// and for an OpenAI-format chat stream that did not say whether to include
// usage, where its stream_options are (start < 0: absent).
type reqInfo struct {
	model       string
	wantsUsage  bool
	optsStart   int
	optsEnd     int
	optsHasKeys bool
}

const maxModelName = 200

// modelLabel is a client's model name made fit to key usage rows and to
// be a metric label: valid UTF-8 (the Prometheus client refuses anything
// else), and a name's length, not a payload's.
func modelLabel(m string) string {
	if len(m) > maxModelName {
		m = m[:maxModelName]
	}
	return strings.ToValidUTF8(m, "\uFFFD")
}

// inspect reads the model from the JSON body (OpenAI, Anthropic) or the
// path (Gemini: /v1beta/models/NAME:generateContent), and whether a chat
// stream left stream_options.include_usage unsaid. It scans the body's
// top level only.
func inspect(kind state.Kind, rest string, body []byte) reqInfo {
	info := reqInfo{optsStart: -1}
	if i := strings.Index(rest, "/models/"); i >= 0 && kind == state.KindGemini {
		m := rest[i+len("/models/"):]
		if j := strings.IndexAny(m, ":/?"); j >= 0 {
			m = m[:j]
		}
		info.model = modelLabel(m)
		return info
	}
	if len(body) == 0 || !bytes.Contains(body, []byte(`"model"`)) {
		return info
	}
	stream := false
	ok := members(body, func(key []byte, vs, ve int) {
		switch string(key) {
		case "model":
			info.model, _ = jsonString(body[vs:ve])
		case "stream":
			stream = string(body[vs:ve]) == "true"
		case "stream_options":
			info.optsStart, info.optsEnd = vs, ve
		}
	})
	if !ok {
		return reqInfo{}
	}
	info.model = modelLabel(info.model)
	chat := kind == state.KindOpenAI && strings.HasSuffix(strings.TrimSuffix(rest, "/"), "/chat/completions")
	if !chat || !stream {
		return info
	}
	info.wantsUsage = true
	if info.optsStart >= 0 {
		opts := body[info.optsStart:info.optsEnd]
		switch {
		case string(opts) == "null":
		case opts[0] != '{':
			info.wantsUsage = false // not ours to fix
		default:
			members(opts, func(key []byte, _, _ int) {
				info.optsHasKeys = true
				if string(key) == "include_usage" {
					info.wantsUsage = false // said, either way
				}
			})
		}
	}
	return info
}

// withStreamUsage asks a chat stream to end with its usage: it adds
// "include_usage":true to stream_options (or the whole stream_options),
// leaving every other byte of the body as it was.
func withStreamUsage(body []byte, info reqInfo) []byte {
	out := make([]byte, 0, len(body)+40)
	switch {
	case info.optsStart < 0: // no stream_options: the first member
		i := bytes.IndexByte(body, '{')
		out = append(out, body[:i+1]...)
		out = append(out, `"stream_options":{"include_usage":true},`...)
		out = append(out, body[i+1:]...)
	case body[info.optsStart] == 'n': // null
		out = append(out, body[:info.optsStart]...)
		out = append(out, `{"include_usage":true}`...)
		out = append(out, body[info.optsEnd:]...)
	default: // options of the client's own: ours first among them
		i := info.optsStart + 1
		out = append(out, body[:i]...)
		out = append(out, `"include_usage":true`...)
		if info.optsHasKeys {
			out = append(out, ',')
		}
		out = append(out, body[i:]...)
	}
	return out
}

// outbound is the request as it goes upstream, less the key: built once,
// sent once per attempt.
type outbound struct {
	method, target string
	header         http.Header // the client's, less its auth and hop-by-hop headers
	body           []byte
}

// attempt is one try of a request on one key.
type attempt struct {
	key     upKey
	resp    *http.Response
	errBody []byte // a failed answer's body, read whole and redacted
	err     error  // no answer at all
	timeout bool   // no response headers in time
	// ctx bounds the attempt; its cause tells an idle stream apart.
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// close ends the attempt: its body, and with it the upstream request.
func (a *attempt) close() {
	if a.resp != nil {
		a.resp.Body.Close()
	}
	a.cancel(nil)
}

// answer is a successful attempt, on its way to the client.
type answer struct {
	*attempt
	up       *upstream
	secrets  []string
	lease    rotate.Lease
	outcome  rotate.Outcome
	attempts int
	model    string
	log      *reqLog
	start    time.Time
	logLine  slog.Level // of the line that says it was served
}

// forward sends the request to a key the provider's rotation picks, and on
// a failure another key may not share (rate limit, quota, invalid key,
// server or transport failure) to the next one, until an answer worth
// giving arrives, the attempt budget or deadline is spent, or no key is
// left. Nothing has reached the client until then, so a retry is safe.
// A failure is answered here; a success is returned for deliver to
// stream through untouched: from its first byte on there is no retry.
func (d *Daemon) forward(w http.ResponseWriter, r *http.Request, snap *snapshot, up *upstream, rest string, body []byte) *answer {
	start := time.Now()
	dc := snap.cfg.Daemon
	deadline := start.Add(dc.RetryDeadline.Or(state.DefaultRetryDeadline))
	waitUntil := start.Add(dc.WaitLimit())
	info := inspect(up.Kind, rest, body)
	model := info.model
	if info.wantsUsage && dc.AddStreamUsage() {
		body = withStreamUsage(body, info)
	}
	log := &reqLog{log: d.log, provider: up.Name, model: model, method: r.Method, path: r.URL.Path}

	// Every attempt's headers are a copy of the client's, less its auth
	// and hop-by-hop headers: those are removed from the request itself,
	// which is the handler's to change.
	removeHopHeaders(r.Header)
	for _, h := range inboundAuthHeaders {
		r.Header.Del(h)
	}
	out := outbound{method: r.Method, target: up.BaseURL + rest, header: r.Header, body: body}
	if q := stripKeyParam(r.URL.RawQuery); q != "" {
		out.target += "?" + q
	}

	var tried []string // keys not to choose again for this request
	var last *attempt
	n := 0 // attempts sent
	for {
		lease, den := up.rot.Acquire(model, tried)
		if den != nil {
			now := time.Now()
			until := den.Until
			if until.IsZero() && den.OnRelease {
				until = waitUntil
			}
			if now.Before(waitUntil) && now.Before(deadline) && !until.IsZero() && !until.After(waitUntil) {
				timer := time.NewTimer(max(until.Sub(now), time.Millisecond))
				select {
				case <-timer.C:
				case <-den.Wake:
				case <-r.Context().Done():
					timer.Stop()
					return nil
				}
				timer.Stop()
				continue
			}
			d.answerDenied(w, up, den, last, n, snap.secrets, log, start)
			return nil
		}
		key, ok := up.keys[lease.Name]
		if !ok { // removed by a reload since this request began
			if u := d.snap.Load().providers[up.Name]; u != nil {
				key, ok = u.keys[lease.Name]
			}
		}
		if !ok {
			lease.Cancel()
			tried = append(tried, lease.Name)
			continue
		}

		n++
		a := d.try(r.Context(), up, key, out, n, snap.secrets)
		if r.Context().Err() != nil {
			lease.Cancel()
			a.close()
			d.record(up, key, model, failedAttempt("client-canceled"))
			log.Info("client went away before the upstream answered", "key", key.Name)
			return nil
		}
		var o rotate.Outcome
		switch {
		case a.err != nil:
			o = rotate.TransportOutcome(transportReason(a, up))
		case a.resp.StatusCode >= 400:
			o = rotate.Classify(up.Kind, a.resp.StatusCode, a.resp.Header, a.errBody, d.clock.Now())
		default:
			o = rotate.Classify(up.Kind, a.resp.StatusCode, a.resp.Header, nil, d.clock.Now())
			ans := &answer{attempt: a, up: up, secrets: snap.secrets, lease: lease, outcome: o, attempts: n,
				model: model, log: log, start: start, logLine: slog.LevelDebug}
			if dc.LogRequests {
				ans.logLine = slog.LevelInfo
			}
			return ans
		}
		lease.Done(o, 0)
		class := o.Class.String()
		d.record(up, key, model, failedAttempt(class))
		if o.Class.SetsAside() != "" {
			d.metrics.cooldowns.WithLabelValues(up.Name, key.Name, class).Inc()
		}
		if o.Class == rotate.ServerError || o.Class == rotate.Transport {
			// Nothing keeps this key from being chosen again at once;
			// the other failures cool or park it, which also lets a
			// request that waits try it again once it is back.
			tried = append(tried, key.Name)
		}
		last = a
		retry := o.Class.Retryable() && n < dc.Attempts() && time.Now().Before(deadline)
		log.Info("attempt failed", "key", key.Name, "attempt", n, "class", class, "status", o.Status,
			"reason", redact(o.Reason, snap.secrets), "wait", o.Wait, "retry", retry)
		if !retry {
			d.answerFailed(w, up, a, n, snap.secrets, log, start)
			return nil
		}
		d.metrics.retries.WithLabelValues(up.Name).Inc()
	}
}

// reqLog writes the log lines of one request, each with its provider,
// model, method and path. Unlike slog's With, it formats those only for a
// line written, not for every request up front, and holds no buffer for
// as long as a stream is open.
type reqLog struct {
	log                           *slog.Logger
	provider, model, method, path string
}

func (l *reqLog) Info(msg string, args ...any) { l.write(slog.LevelInfo, msg, args...) }
func (l *reqLog) Warn(msg string, args ...any) { l.write(slog.LevelWarn, msg, args...) }

func (l *reqLog) enabled(level slog.Level) bool { return l.log.Enabled(context.Background(), level) }

func (l *reqLog) write(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	// A record of our own: Logger.Log would also walk the stack for a
	// source position the handler does not print.
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(slog.String("provider", l.provider), slog.String("model", l.model),
		slog.String("method", l.method), slog.String("path", l.path))
	r.Add(args...)
	l.log.Handler().Handle(ctx, r)
}

// record counts one attempt's outcome on a key and model, today.
func (d *Daemon) record(up *upstream, key upKey, model string, c state.Counts) {
	d.usage.add(d.clock.Now(), state.UsageKey{Provider: up.Name, Key: key.Name,
		Fingerprint: key.fingerprint, Model: model}, c)
}

// failedAttempt is the count of one attempt that failed with class.
func failedAttempt(class string) state.Counts {
	return state.Counts{Requests: 1, Failures: map[string]int64{class: 1}}
}

// try sends one attempt with key. A failed answer's body is read whole
// (error bodies are small) and redacted, for classifying and passing on.
func (d *Daemon) try(ctx context.Context, up *upstream, key upKey, out outbound, n int, secrets []string) *attempt {
	a := &attempt{key: key}
	a.ctx, a.cancel = context.WithCancelCause(ctx)
	var rd io.Reader
	if out.body != nil {
		rd = bytes.NewReader(out.body)
	}
	req, err := http.NewRequestWithContext(a.ctx, out.method, out.target, rd)
	if err != nil {
		a.err = err
		return a
	}
	// The first attempt sends the client's headers as they are; a later
	// one a copy, since the transport may still be reading the first's.
	req.Header = out.header
	if n > 1 {
		req.Header = out.header.Clone()
	}
	req.Header[up.authHeader] = key.auth

	headerTimer := time.AfterFunc(up.ResponseHeaderTimeout, func() { a.cancel(errHeaderTimeout) })
	sent := time.Now()
	resp, err := d.transport.RoundTrip(req)
	headerTimer.Stop()
	if err != nil {
		a.timeout = errors.Is(context.Cause(a.ctx), errHeaderTimeout)
		a.err = err
		a.cancel(nil)
		return a
	}
	up.latency.Observe(time.Since(sent).Seconds())
	a.resp = resp
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		a.close()
		a.errBody = []byte(redact(string(b), secrets))
	}
	return a
}

var errHeaderTimeout = errors.New("response header timeout")

func transportReason(a *attempt, up *upstream) string {
	if a.timeout {
		return fmt.Sprintf("no response headers within %s", up.ResponseHeaderTimeout)
	}
	return rootCause(a.err)
}

// answerFailed gives the client the last attempt's answer: the provider's
// own error, unchanged but for secrets, or llmkey's word for no answer.
func (d *Daemon) answerFailed(w http.ResponseWriter, up *upstream, a *attempt, n int, secrets []string, log *reqLog, start time.Time) {
	if a.err != nil {
		if a.timeout {
			writeError(w, up.Kind, proxyError{status: http.StatusGatewayTimeout, code: codeUpstreamTimeout,
				message: fmt.Sprintf("%s sent no response headers within %s ([daemon] response_header_timeout)", up.Name, up.ResponseHeaderTimeout)})
			return
		}
		writeError(w, up.Kind, proxyError{status: http.StatusBadGateway, code: codeUpstreamUnreachable,
			message: fmt.Sprintf("could not reach %s at %s: %s", up.Name, hostOf(up.BaseURL), redact(rootCause(a.err), secrets))})
		return
	}
	h := w.Header()
	copyHeader(h, a.resp.Header)
	removeHopHeaders(h)
	h.Set("Content-Length", strconv.Itoa(len(a.errBody)))
	h.Set("X-Llmkey-Key", up.Name+"/"+a.key.Name)
	h.Set("X-Llmkey-Attempts", strconv.Itoa(n))
	w.WriteHeader(a.resp.StatusCode)
	w.Write(a.errBody)
	log.Info("upstream error", "key", a.key.Name, "status", a.resp.StatusCode, "attempts", n, "ms", time.Since(start).Milliseconds())
}

// answerDenied answers when no key can take the request now.
func (d *Daemon) answerDenied(w http.ResponseWriter, up *upstream, den *rotate.Denial, last *attempt, tries int, secrets []string, log *reqLog, start time.Time) {
	var retryAfter time.Duration
	if !den.Until.IsZero() {
		retryAfter = max(time.Until(den.Until), time.Second)
	}
	d.metrics.denied.WithLabelValues(up.Name, den.Code).Inc()
	log.Info("no usable key", "code", den.Code, "detail", den.Detail, "retry_after", retryAfter.Round(time.Second))
	switch {
	case den.Code == "all-keys-cooling":
		when := "soon"
		if retryAfter > 0 {
			when = fmt.Sprintf("in %s, at %s", retryAfter.Round(time.Second), time.Now().Add(retryAfter).Format("15:04:05"))
		}
		writeError(w, up.Kind, proxyError{status: http.StatusTooManyRequests, code: codeAllKeysCooling, retryAfter: retryAfter,
			message: fmt.Sprintf("every %s key is rate limited or at its limit; the first frees %s (%s). Add a key, or raise [daemon] max_wait to wait for it", up.Name, when, den.Detail)})
	case den.Code == "provider-unavailable":
		writeError(w, up.Kind, proxyError{status: http.StatusServiceUnavailable, code: codeProviderUnavailable, retryAfter: retryAfter,
			message: den.Detail})
	case last != nil:
		// The provider's own answer says more than "no usable key": the
		// 401 that parked the last key, say.
		d.answerFailed(w, up, last, tries, secrets, log, start)
	case den.Code == "no-keys":
		writeError(w, up.Kind, proxyError{status: http.StatusServiceUnavailable, code: codeNoKeys,
			message: den.Detail + ": add one with 'llmkey add " + up.Name + "', or check the key's models"})
	default:
		writeError(w, up.Kind, proxyError{status: http.StatusServiceUnavailable, code: codeNoUsableKeys, retryAfter: retryAfter,
			message: fmt.Sprintf("no %s key is usable now (%s); 'llmkey enable %s/NAME' or 'llmkey reset %s/NAME' brings one back", up.Name, den.Detail, up.Name, up.Name)})
	}
}

// deliver streams a successful answer to the client and reports the key's
// outcome, with the tokens it used, when the stream ends. What it calls
// before and after the stream runs in frames of its own, so that the
// stack an open stream holds is only what the copy needs.
func (d *Daemon) deliver(w http.ResponseWriter, ans *answer) {
	defer ans.close()
	writeHead(w, ans)
	meter := newUsageMeter(ans.resp.Header.Get("Content-Type"))
	written, err := d.stream(w, ans.resp.Body, meter, ans.up.StreamIdleTimeout, ans.cancel)
	d.finish(w, ans, meter, written, err)
}

// writeHead sends the answer's status and headers, less the hop-by-hop
// ones, with the key that served it and the attempts it took.
func writeHead(w http.ResponseWriter, ans *answer) {
	h := w.Header()
	copyHeader(h, ans.resp.Header)
	removeHopHeaders(h)
	for k := range ans.resp.Trailer {
		h.Add("Trailer", k)
	}
	h.Set("X-Llmkey-Key", ans.up.Name+"/"+ans.key.Name)
	h.Set("X-Llmkey-Attempts", strconv.Itoa(ans.attempts))
	w.WriteHeader(ans.resp.StatusCode)
}

// finish ends a delivered answer: its trailers, the key's outcome and
// usage, and the log line. A stream cut off is counted as partial, with
// the tokens seen, and the client's connection is aborted so that it
// sees the break.
func (d *Daemon) finish(w http.ResponseWriter, ans *answer, meter *usageMeter, written int64, err error) {
	resp := ans.resp
	h := w.Header()
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	u, _ := meter.Usage()
	c := u.counts()
	ans.lease.Done(ans.outcome, int(c.Tokens()))
	c.Requests, c.Successes = 1, 1
	if err != nil {
		c.Successes, c.Partial = 0, 1 // counted with the tokens seen before the break
	}
	d.record(ans.up, ans.key, ans.model, c)
	if err != nil {
		if errors.Is(context.Cause(ans.ctx), errStreamIdle) {
			err = fmt.Errorf("%w: nothing for %s ([daemon] stream_idle_timeout)", errStreamIdle, ans.up.StreamIdleTimeout)
		}
		ans.log.Warn("stream ended early", "key", ans.key.Name, "status", resp.StatusCode, "bytes", written,
			"err", redact(err.Error(), ans.secrets), "ms", time.Since(ans.start).Milliseconds())
		// Ending the response normally would tell the client the body is
		// complete. Abort the connection so that it sees the break.
		panic(http.ErrAbortHandler)
	}
	if ans.log.enabled(ans.logLine) {
		ans.log.write(ans.logLine, "request", "key", ans.key.Name, "status", resp.StatusCode, "attempts", ans.attempts, "bytes", written,
			"input_tokens", u.Input, "output_tokens", u.Output, "ms", time.Since(ans.start).Milliseconds())
	}
}

var errStreamIdle = errors.New("stream idle timeout")

// streamBufs are the copy buffers of answers: pooled, so a request does
// not allocate one, and 4 KiB, so that a thousand open streams stay small
// (the upstream connection reads through a 4 KiB buffer anyway).
var streamBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// stream copies body to w, and to meter, flushing after every read so
// each event goes out as the upstream sends it. A body silent for longer
// than idle is cut.
func (d *Daemon) stream(w http.ResponseWriter, body io.Reader, meter io.Writer, idle time.Duration, cancel context.CancelCauseFunc) (int64, error) {
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
			if _, werr := w.Write(buf[:m]); werr != nil {
				return n, fmt.Errorf("write to client: %w", werr)
			}
			n += int64(m)
			if ferr := rc.Flush(); ferr != nil {
				return n, fmt.Errorf("flush to client: %w", ferr)
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

// The headers in which the providers' SDKs send their key: all of them
// carry our local token on the way in, and none may leave.
var inboundAuthHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key"}

// authorized reports whether r carries the local token, in whichever
// place its SDK puts the key, compared in constant time.
func (d *Daemon) authorized(r *http.Request) bool {
	var candidates []string
	if a := r.Header.Get("Authorization"); a != "" {
		if tok, ok := strings.CutPrefix(a, "Bearer "); ok {
			candidates = append(candidates, strings.TrimSpace(tok))
		}
	}
	for _, h := range []string{"X-Api-Key", "X-Goog-Api-Key"} {
		if v := r.Header.Get(h); v != "" {
			candidates = append(candidates, v)
		}
	}
	if r.URL.RawQuery != "" {
		if v := r.URL.Query().Get("key"); v != "" {
			candidates = append(candidates, v)
		}
	}
	if len(candidates) == 0 {
		return false
	}
	for _, c := range candidates {
		if subtle.ConstantTimeCompare([]byte(c), []byte(d.token)) != 1 {
			return false
		}
	}
	return true
}

// splitRoute splits "/openai/chat/completions" into "openai" and
// "/chat/completions", keeping the escaping of the rest.
func splitRoute(p string) (string, string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// stripKeyParam removes ?key=, where Gemini clients may put the token.
func stripKeyParam(raw string) string {
	if !strings.Contains(raw, "key=") {
		return raw
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	q.Del("key")
	return q.Encode()
}

func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func allowedOrigin(origin string, allowed []string) bool {
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), origin) {
			return true
		}
	}
	return false
}

// Hop-by-hop headers belong to one connection, not to the request
// (RFC 9110 7.6.1; as net/http/httputil).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, sf := range strings.Split(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k) // canonical already: Del would canonicalize it again
	}
}

// copyHeader adds src's values to dst; src's keys are canonical (a
// received header's are). A key dst lacks shares src's values, capped so
// that an Add to dst copies them rather than write into src.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if dst[k] == nil {
			dst[k] = vv[:len(vv):len(vv)]
			continue
		}
		dst[k] = append(dst[k], vv...)
	}
}

// redact replaces every configured secret in s by its masked form.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, state.Mask(sec))
		}
	}
	return s
}

func hostOf(base string) string {
	if u, err := url.Parse(base); err == nil {
		return u.Host
	}
	return base
}

// rootCause is the innermost error's text: "connection refused" rather
// than the URL-laden chain.
func rootCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

func (d *Daemon) serveLivez(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"in_flight": d.inFlight.Load(), "draining": d.draining.Load()})
}

func (d *Daemon) serveHealthz(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	if d.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"status": "draining"})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"status": "ok"})
}
