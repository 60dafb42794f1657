package wire

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxWait bounds any wait a provider asks for. A longer one is almost
// certainly a parse error or a date far away; parking handles those.
const MaxWait = 7 * 24 * time.Hour

// RetryAfter reads how long the provider asked the client to wait before
// trying this key again, from the first of these that applies:
//
//   - the retry-after-ms header;
//   - the retry-after header, in seconds or as an HTTP date;
//   - a google.rpc.RetryInfo retryDelay in the body (Gemini);
//   - OpenAI x-ratelimit-reset-* or Anthropic anthropic-ratelimit-*-reset
//     where the matching remaining count is 0;
//   - a "try again in 6ms" / "retry in 58.2s" phrase in the body.
//
// It returns 0 and "" when none does. source names where the wait came
// from, for a person reading "cooling 30s (retry-after)".
func RetryAfter(h http.Header, body []byte, now time.Time) (wait time.Duration, source string) {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && ms >= 0 && ms < float64(MaxWait/time.Millisecond) {
			return clampWait(time.Duration(ms * float64(time.Millisecond))), "retry-after-ms"
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < MaxWait.Seconds() {
			return clampWait(time.Duration(s * float64(time.Second))), "retry-after"
		}
		if t, err := http.ParseTime(v); err == nil {
			return clampWait(t.Sub(now)), "retry-after"
		}
	}
	if d, ok := retryInfoDelay(body); ok {
		return clampWait(d), "RetryInfo"
	}
	if d, src := ResetWhenExhausted(h, now); d > 0 {
		return d, src
	}
	if d, ok := phraseWait(body); ok {
		return clampWait(d), "message"
	}
	return 0, ""
}

// ResetWhenExhausted reads the rate-limit headers of any answer, success
// included: when a remaining count is 0, the key is spent until the
// matching reset. It returns the longest such wait.
func ResetWhenExhausted(h http.Header, now time.Time) (time.Duration, string) {
	l := limitsOf(h, now)
	return l.wait, l.source
}

// Headroom is the smallest share of a limit an answer says is left
// (remaining over limit), and how soon that limit resets; for is 0 when
// the answer says nothing of its limits.
func Headroom(h http.Header, now time.Time) (left float64, resets time.Duration) {
	l := limitsOf(h, now)
	return l.left, l.resets
}

// limits is what an answer's rate-limit headers say.
type limits struct {
	wait   time.Duration // until the latest reset of a limit spent (remaining 0)
	source string        // the header that said so
	left   float64       // the smallest share of a limit left
	resets time.Duration // when that limit resets (0: none said)
}

// limitsOf reads an answer's rate-limit headers, in one pass: every
// success is looked at, and most answers send few of them or none (a
// header looked for that is absent costs a lookup, nothing more).
func limitsOf(h http.Header, now time.Time) limits {
	l := limits{left: 1}
	for i := range rateLimits {
		r := &rateLimits[i]
		remS := strings.TrimSpace(header(h, r.remaining))
		if remS == "" {
			continue
		}
		d, ok := r.resetIn(h, now)
		if !ok {
			continue
		}
		if remS == "0" && d > l.wait {
			l.wait, l.source = d, strings.ToLower(r.reset)
		}
		limS := strings.TrimSpace(header(h, r.limit))
		if limS == "" || d <= 0 {
			continue
		}
		rem, err1 := strconv.ParseFloat(remS, 64)
		lim, err2 := strconv.ParseFloat(limS, 64)
		if err1 != nil || err2 != nil || lim <= 0 || rem < 0 {
			continue
		}
		if share := min(rem/lim, 1); share < l.left || l.resets == 0 {
			l.left, l.resets = share, clampWait(d)
		}
	}
	l.wait = clampWait(l.wait)
	return l
}

// rateLimit is one limit's headers, as a received header's keys are
// stored: canonical. OpenAI gives its reset as a duration ("6m0s",
// "20ms") or seconds; Anthropic as a time (RFC 3339).
type rateLimit struct {
	limit, remaining, reset string
	at                      bool // the reset is a time, not a duration
}

var rateLimits = [...]rateLimit{
	// OpenAI: x-ratelimit-remaining-requests: 0, x-ratelimit-reset-requests: 6m0s
	{"X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests", false},
	{"X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens", false},
	// Anthropic: anthropic-ratelimit-requests-remaining: 0,
	// anthropic-ratelimit-requests-reset: 2025-01-01T00:00:30Z
	{"Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset", true},
	{"Anthropic-Ratelimit-Tokens-Limit", "Anthropic-Ratelimit-Tokens-Remaining", "Anthropic-Ratelimit-Tokens-Reset", true},
	{"Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset", true},
	{"Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset", true},
}

// resetIn is how soon r resets, by h, at now.
func (r *rateLimit) resetIn(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(header(h, r.reset))
	if v == "" {
		return 0, false
	}
	if r.at {
		t, err := time.Parse(time.RFC3339, v)
		return t.Sub(now), err == nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, true
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && s < MaxWait.Seconds() {
		return time.Duration(s * float64(time.Second)), true
	}
	return 0, false
}

// header is h.Get(key) for a key already canonical: every answer is
// looked at for these, and Get would canonicalize each key again.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func clampWait(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d > MaxWait:
		return MaxWait
	}
	return d
}

// retryInfoDelay finds google.rpc.RetryInfo's retryDelay ("45s") in a
// Gemini error body, which may also come wrapped in a JSON array.
func retryInfoDelay(body []byte) (time.Duration, bool) {
	if !strings.Contains(string(body), "RetryInfo") {
		return 0, false
	}
	e, ok := parseErrorBody(body)
	if !ok || e.RetryDelay == "" {
		return 0, false
	}
	d, err := time.ParseDuration(e.RetryDelay)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}

// "Please try again in 6ms.", "try again in 1m30.5s", "Please retry in
// 58.207328617s.", "retry after 20 seconds".
var phraseRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)(?:try again|retry)\s+(?:in|after)\s+((?:\d{1,9}(?:\.\d{1,12})?\s?(?:ms|h|m|s)){1,4}|\d{1,9}(?:\.\d{1,12})?\s?(?:milliseconds?|seconds?|secs?|minutes?|mins?|hours?))\b`)
})

func phraseWait(body []byte) (time.Duration, bool) {
	if len(body) > 1<<20 {
		body = body[:1<<20]
	}
	m := phraseRE().FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	return parseHumanDuration(string(m[1]))
}

// parseHumanDuration accepts Go durations ("1m30.5s") and "20 seconds".
func parseHumanDuration(s string) (time.Duration, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if d, err := time.ParseDuration(strings.ReplaceAll(s, " ", "")); err == nil && d >= 0 {
		return d, true
	}
	i := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if i <= 0 {
		return 0, false
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, false
	}
	unit := strings.TrimSpace(s[i:])
	var u time.Duration
	switch {
	case strings.HasPrefix(unit, "ms") || strings.HasPrefix(unit, "milli"):
		u = time.Millisecond
	case strings.HasPrefix(unit, "s"):
		u = time.Second
	case strings.HasPrefix(unit, "m"):
		u = time.Minute
	case strings.HasPrefix(unit, "h"):
		u = time.Hour
	default:
		return 0, false
	}
	if n*float64(u) > float64(MaxWait) {
		return MaxWait, true
	}
	return time.Duration(n * float64(u)), true
}

// errorBody is what the three wire formats say about an error, merged:
//
//	OpenAI     {"error": {"message", "type", "param", "code"}}
//	Anthropic  {"type": "error", "error": {"type", "message"}}
//	Gemini     {"error": {"code": 429, "message", "status", "details": [...]}}
//	           (sometimes inside a JSON array)
type errorBody struct {
	Type, Code, Status, Message string
	QuotaIDs                    []string // google.rpc.QuotaFailure violations
	Reasons                     []string // google.rpc.ErrorInfo reasons
	RetryDelay                  string   // google.rpc.RetryInfo
}

func parseErrorBody(body []byte) (errorBody, bool) {
	type detail struct {
		Type       string `json:"@type"`
		RetryDelay string `json:"retryDelay"`
		Reason     string `json:"reason"`
		Violations []struct {
			QuotaID string `json:"quotaId"`
		} `json:"violations"`
	}
	type inner struct {
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Status  string          `json:"status"`
		Message string          `json:"message"`
		Details []detail        `json:"details"`
	}
	var doc struct {
		Error *inner `json:"error"`
	}
	b := body
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	if len(b) > 0 && b[0] == '[' {
		var arr []json.RawMessage
		if json.Unmarshal(b, &arr) != nil || len(arr) == 0 {
			return errorBody{}, false
		}
		b = arr[0]
	}
	if json.Unmarshal(b, &doc) != nil || doc.Error == nil {
		return errorBody{}, false
	}
	in := doc.Error
	e := errorBody{Type: in.Type, Status: in.Status, Message: in.Message}
	if len(in.Code) > 0 {
		var s string
		if json.Unmarshal(in.Code, &s) == nil {
			e.Code = s
		} else {
			e.Code = string(in.Code)
		}
	}
	for _, d := range in.Details {
		switch {
		case strings.HasSuffix(d.Type, "google.rpc.RetryInfo"):
			e.RetryDelay = d.RetryDelay
		case strings.HasSuffix(d.Type, "google.rpc.QuotaFailure"):
			for _, v := range d.Violations {
				e.QuotaIDs = append(e.QuotaIDs, v.QuotaID)
			}
		case strings.HasSuffix(d.Type, "google.rpc.ErrorInfo"):
			e.Reasons = append(e.Reasons, d.Reason)
		}
	}
	return e, true
}
