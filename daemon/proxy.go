package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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

	i, ok := up.pool.Pick()
	if !ok {
		writeError(w, kind, proxyError{status: http.StatusServiceUnavailable, code: codeNoKeys,
			message: fmt.Sprintf("no keys for %s: add one with 'llmkey add %s'", name, name)})
		return
	}
	d.forward(w, r, snap, up, up.keys[i], rest)
}

// forward sends r upstream with key and streams the answer back. Nothing
// is buffered: the request body is read as the upstream reads it, and each
// read of the response is written and flushed at once.
func (d *Daemon) forward(w http.ResponseWriter, r *http.Request, snap *snapshot, up *upstream, key state.Key, rest string) {
	start := time.Now()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)

	target := up.BaseURL + rest
	if q := stripKeyParam(r.URL.RawQuery); q != "" {
		target += "?" + q
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, r.Body)
	if err != nil {
		writeError(w, up.Kind, proxyError{status: http.StatusBadRequest, code: codeUnknownProvider, message: "bad request path: " + err.Error()})
		return
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	out.ContentLength = r.ContentLength
	copyHeader(out.Header, r.Header)
	removeHopHeaders(out.Header)
	for _, h := range inboundAuthHeaders {
		out.Header.Del(h)
	}
	if up.Kind == state.KindOpenAI {
		out.Header.Set("Authorization", "Bearer "+key.Secret)
	} else {
		out.Header.Set(up.Kind.AuthHeader(), key.Secret)
	}

	errHeaderTimeout := errors.New("response header timeout")
	headerTimer := time.AfterFunc(up.ResponseHeaderTimeout, func() { cancel(errHeaderTimeout) })
	resp, err := d.transport.RoundTrip(out)
	headerTimer.Stop()
	log := d.log.With("provider", up.Name, "key", key.Name, "method", r.Method, "path", r.URL.Path)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			log.Info("client went away before the upstream answered")
		case errors.Is(context.Cause(ctx), errHeaderTimeout):
			log.Warn("upstream header timeout", "after", up.ResponseHeaderTimeout)
			writeError(w, up.Kind, proxyError{status: http.StatusGatewayTimeout, code: codeUpstreamTimeout,
				message: fmt.Sprintf("%s sent no response headers within %s ([daemon] response_header_timeout)", up.Name, up.ResponseHeaderTimeout)})
		default:
			log.Warn("upstream unreachable", "err", redact(err.Error(), snap.secrets))
			writeError(w, up.Kind, proxyError{status: http.StatusBadGateway, code: codeUpstreamUnreachable,
				message: fmt.Sprintf("could not reach %s at %s: %s", up.Name, hostOf(up.BaseURL), redact(rootCause(err), snap.secrets))})
		}
		return
	}
	defer resp.Body.Close()

	h := w.Header()
	copyHeader(h, resp.Header)
	removeHopHeaders(h)
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}

	if resp.StatusCode >= 400 {
		// Error bodies are small and may echo a key back ("Incorrect API
		// key provided: sk-..."); they are read whole and redacted.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		body = []byte(redact(string(body), snap.secrets))
		h.Del("Content-Length")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
		log.Info("upstream error", "status", resp.StatusCode, "ms", time.Since(start).Milliseconds())
		return
	}

	w.WriteHeader(resp.StatusCode)
	n, err := d.stream(w, resp.Body, up.StreamIdleTimeout, cancel)
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), errStreamIdle) {
			err = fmt.Errorf("%w: nothing for %s ([daemon] stream_idle_timeout)", errStreamIdle, up.StreamIdleTimeout)
		}
		log.Warn("stream ended early", "status", resp.StatusCode, "bytes", n, "err", redact(err.Error(), snap.secrets), "ms", time.Since(start).Milliseconds())
		// Ending the response normally would tell the client the body is
		// complete. Abort the connection so that it sees the break.
		panic(http.ErrAbortHandler)
	}
	log.Info("request", "status", resp.StatusCode, "bytes", n, "ms", time.Since(start).Milliseconds())
}

var errStreamIdle = errors.New("stream idle timeout")

// stream copies body to w, flushing after every read so each event goes
// out as the upstream sends it. A body silent for longer than idle is cut.
func (d *Daemon) stream(w http.ResponseWriter, body io.Reader, idle time.Duration, cancel context.CancelCauseFunc) (int64, error) {
	rc := http.NewResponseController(w)
	timer := time.AfterFunc(idle, func() { cancel(errStreamIdle) })
	defer timer.Stop()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, rerr := body.Read(buf)
		timer.Reset(idle)
		if m > 0 {
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
	if v := r.URL.Query().Get("key"); v != "" {
		candidates = append(candidates, v)
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
	name, rest, _ := strings.Cut(p, "/")
	if rest != "" || strings.HasSuffix(p, "/") {
		rest = "/" + rest
	}
	return name, rest
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
		h.Del(k)
	}
}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
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
