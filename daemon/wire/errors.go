package wire

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// Code is an error of llmkey's own, sent as X-Llmkey-Error so that a
// script can tell it from the provider's. When no key can serve, the code
// is the denial's (rotate.DenialCodes).
type Code string

const (
	BadToken            Code = "bad-token"
	BadHost             Code = "bad-host"
	BadOrigin           Code = "bad-origin"
	BadPath             Code = "bad-path"
	NotSelected         Code = "not-selected"
	UnknownProvider     Code = "unknown-provider"
	Draining            Code = "draining"
	UpstreamUnreachable Code = "upstream-unreachable"
	UpstreamTimeout     Code = "upstream-timeout"
	Overloaded          Code = "overloaded"
	BodyTooLarge        Code = "body-too-large"
	UpstreamLeak        Code = "upstream-leak"
	UpstreamIncomplete  Code = "upstream-incomplete"
	AnswerTooLarge      Code = "answer-too-large"
)

// CodeDoc says what each code means, with its status, for the man page.
var CodeDoc = []struct {
	Code    Code
	Meaning string
}{
	{BadToken, "401: no local token, or the wrong one (or one revoked)."},
	{BadHost, "403: a Host that is not a loopback name (a DNS-rebinding page); /livez and /healthz too."},
	{BadOrigin, "403: a browser Origin not in [daemon] allowed_origins."},
	{BadPath, "400: a '.' or '..' path segment, plain or escaped: it would leave the provider's base_url."},
	{NotSelected, "403: a scoped token (exec --key, --tag) for a provider none of whose keys it was issued for."},
	{UnknownProvider, "404: the first path segment names no provider."},
	{Code(rotate.NoKeys), "503: the provider has no key (for this model)."},
	{Code(rotate.AllKeysCooling), "429: every key is rate limited or at a limit; Retry-After is the soonest."},
	{Code(rotate.NoUsableKeys), "503: every key is parked, disabled or already tried."},
	{Code(rotate.ProviderUnavailable), "503: the provider's circuit is open after an overload or a run of failures."},
	{Code(rotate.ConversationKeyBusy), "429: the conversation's stored state lives with one key, which cannot serve now; Retry-After is when it frees."},
	{Code(rotate.ConversationKeyGone), "409: the conversation's stored state lives with a key that is no longer in the keyfile (or the token's selection)."},
	{UpstreamIncomplete, "502: a demoted request's stream (demote_to_stream) broke off before its message was whole."},
	{AnswerTooLarge, "502: a demoted request's answer is more than llmkey holds to assemble it: 64 MiB in memory (less when max_buffered_mb leaves less), 16384 content blocks, or an event over 4 MiB; X-Should-Retry: false."},
	{Overloaded, "429: over max_in_flight requests, or request bodies and demoted answers over max_buffered_mb in memory; Retry-After: 1."},
	{BodyTooLarge, "413: the request body is over max_body_mb."},
	{Draining, "503: the daemon is shutting down; Retry-After: 1."},
	{UpstreamUnreachable, "502: the provider could not be reached."},
	{UpstreamTimeout, "504: no response headers within response_header_timeout, or a demoted request's stream not ended within it."},
	{UpstreamLeak, "the provider's status: its error answer held the key, and llmkey withheld it."},
}

// Error is an answer llmkey gives itself instead of the provider.
type Error struct {
	Status     int
	Code       Code
	Message    string        // what happened and what to do, for a person
	RetryAfter time.Duration // 0: unknown
}

// WriteError answers in the wire format of the provider the client talks
// to, so its SDK parses the message and shows it to the person.
func WriteError(w http.ResponseWriter, kind state.Kind, e Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Llmkey-Error", string(e.Code))
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	b := ErrorBody(kind, e)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	w.Write(b)
}

// ErrorBody is e in the wire format of kind, as WriteError sends it.
func ErrorBody(kind state.Kind, e Error) []byte {
	msg := "llmkey: " + e.Message
	var body any
	switch kind {
	case state.KindAnthropic:
		body = map[string]any{"type": "error", "error": map[string]any{"type": anthropicType(e.Status), "message": msg}}
	case state.KindGemini:
		body = map[string]any{"error": map[string]any{"code": e.Status, "message": msg, "status": googleStatus(e.Status)}}
	default:
		body = map[string]any{"error": map[string]any{"message": msg, "type": "llmkey_error", "param": nil, "code": e.Code}}
	}
	b, _ := json.Marshal(body)
	return append(b, '\n')
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
