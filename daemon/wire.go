package daemon

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/llmkey/llmkey/state"
)

// Error codes of llmkey's own, sent as X-Llmkey-Error so that a script can
// tell them from the provider's.
const (
	codeBadToken            = "bad-token"
	codeBadHost             = "bad-host"
	codeBadOrigin           = "bad-origin"
	codeUnknownProvider     = "unknown-provider"
	codeNoKeys              = "no-keys"
	codeDraining            = "draining"
	codeUpstreamUnreachable = "upstream-unreachable"
	codeUpstreamTimeout     = "upstream-timeout"
	codeOverloaded          = "overloaded"
	codeBodyTooLarge        = "body-too-large"
	codeAllKeysCooling      = "all-keys-cooling"
	codeNoUsableKeys        = "no-usable-keys"
	codeProviderUnavailable = "provider-unavailable"
)

// proxyError is an answer llmkey gives itself instead of the provider.
type proxyError struct {
	status     int
	code       string
	message    string        // what happened and what to do, for a person
	retryAfter time.Duration // 0: unknown
}

// writeError answers in the wire format of the provider the client talks
// to, so its SDK parses the message and shows it to the person.
func writeError(w http.ResponseWriter, kind state.Kind, e proxyError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Llmkey-Error", e.code)
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	msg := "llmkey: " + e.message
	var body any
	switch kind {
	case state.KindAnthropic:
		body = map[string]any{"type": "error", "error": map[string]any{"type": anthropicType(e.status), "message": msg}}
	case state.KindGemini:
		body = map[string]any{"error": map[string]any{"code": e.status, "message": msg, "status": googleStatus(e.status)}}
	default:
		body = map[string]any{"error": map[string]any{"message": msg, "type": "llmkey_error", "param": nil, "code": e.code}}
	}
	b, _ := json.Marshal(body)
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(e.status)
	w.Write(append(b, '\n'))
}

func anthropicType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 503, 529:
		return "overloaded_error"
	}
	return "api_error"
}

func googleStatus(status int) string {
	switch status {
	case 400, 413:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 502, 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	return "INTERNAL"
}
