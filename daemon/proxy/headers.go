package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// splitRoute splits "/openai/chat/completions" into "openai" and
// "/chat/completions", keeping the escaping of the rest.
func splitRoute(p string) (string, string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// dotSegments reports whether an escaped path has a "." or ".." segment,
// written plainly or escaped (%2e%2e, ..%2f): it would climb out of the
// path in base_url at the upstream.
func dotSegments(escaped string) bool {
	if !strings.Contains(escaped, ".") && !strings.Contains(escaped, "%") {
		return false
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return true
	}
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
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
	for _, f := range h["Connection"] { // canonical already
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

// first is a header's first value, looked up by its canonical key as it
// is (Get would canonicalize it again, on every request).
func first(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	return vv[0]
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
