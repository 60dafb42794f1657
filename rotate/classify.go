package rotate

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/llmkey/llmkey/state"
)

// Class is what an upstream's answer says about the key that got it.
type Class uint8

const (
	Success     Class = iota
	RateLimited       // this key, for this model, for a while
	Quota             // this key's quota or billing is exhausted
	InvalidKey        // the provider does not accept this key
	Forbidden         // this key may not use this model
	Overloaded        // the provider as a whole (Anthropic 529, 503)
	ServerError       // any other 5xx: not the key's fault
	Transport         // connect, reset, header timeout
	CallerFault       // the request itself (400, 404, 413, 422): any key would get it
)

var classNames = [...]string{"success", "rate-limited", "quota", "invalid-key", "forbidden", "overloaded", "server-error", "transport", "caller-fault"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// Retryable reports whether another key may get a better answer: the
// request is then safe to send again elsewhere, since nothing of this
// answer has reached the client.
func (c Class) Retryable() bool {
	switch c {
	case RateLimited, Quota, InvalidKey, Forbidden, ServerError, Transport:
		return true
	}
	return false
}

// SetsAside says what an answer of class c does to the key that got it:
// "cools" (out of rotation for a wait, for that model), "parks" (out until
// a probe succeeds), or "" (nothing, or the provider's circuit, not the
// key). Done carries it out; metrics and help describe it from here.
func (c Class) SetsAside() string {
	switch c {
	case RateLimited, Forbidden:
		return "cools"
	case Quota, InvalidKey:
		return "parks"
	}
	return ""
}

// Classes lists every class, in order.
func Classes() []Class {
	out := make([]Class, len(classNames))
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// Outcome is one classified upstream answer.
type Outcome struct {
	Class  Class
	Status int // 0 for a transport failure
	// Wait is how long the provider asked to wait (0: it did not say), and
	// WaitSource where it said so. For a success, a non-zero Wait means a
	// remaining count reached 0: the key is spent until then.
	Wait       time.Duration
	WaitSource string
	// Until is set when a quota returns at a known time (a daily reset).
	Until time.Time
	// Reason is a short text for a person: "429 rate limited", with the
	// provider's code where it gave one. Never the raw body.
	Reason string
}

// Classify reads one upstream answer in the provider's wire format. body
// is the (already redacted) error body; it is ignored for a success.
func Classify(kind state.Kind, status int, h http.Header, body []byte, now time.Time) Outcome {
	if status < 400 {
		o := Outcome{Class: Success, Status: status}
		o.Wait, o.WaitSource = ResetWhenExhausted(h, now)
		if o.Wait > 0 {
			o.Reason = "remaining 0 until reset (" + o.WaitSource + ")"
		}
		return o
	}
	e, _ := parseErrorBody(body)
	o := Outcome{Status: status}
	o.Wait, o.WaitSource = RetryAfter(h, body, now)
	o.Class, o.Reason = classify(kind, status, e, body)
	if o.Class == Quota {
		if t, ok := quotaReturns(kind, e, body, now); ok {
			o.Until = t
		}
	}
	if o.Reason == "" {
		o.Reason = fmt.Sprintf("%d %s", status, o.Class)
	}
	return o
}

// TransportOutcome is the outcome of a request that got no answer.
func TransportOutcome(reason string) Outcome {
	return Outcome{Class: Transport, Reason: reason}
}

func classify(kind state.Kind, status int, e errorBody, body []byte) (Class, string) {
	code := strings.ToLower(e.Code)
	typ := strings.ToLower(e.Type)
	msg := strings.ToLower(e.Message)
	with := func(c Class, what string) (Class, string) {
		r := fmt.Sprintf("%d %s", status, what)
		switch {
		case e.Code != "" && e.Code != fmt.Sprint(status):
			r += " (" + short(e.Code) + ")"
		case e.Type != "" && e.Type != "error":
			r += " (" + short(e.Type) + ")"
		case e.Status != "":
			r += " (" + short(e.Status) + ")"
		}
		return c, r
	}

	// Spent money or quota, whatever the status says it is.
	if quotaCodes[code] || quotaCodes[typ] || strings.Contains(msg, "credit balance is too low") ||
		strings.Contains(msg, "reached your specified api usage limits") || strings.Contains(msg, "spend limit") {
		return with(Quota, "quota or billing exhausted")
	}
	if kind == state.KindGemini {
		for _, r := range e.Reasons {
			switch r {
			case "API_KEY_INVALID", "API_KEY_EXPIRED":
				return with(InvalidKey, "invalid key")
			case "API_KEY_SERVICE_BLOCKED", "CONSUMER_SUSPENDED", "SERVICE_DISABLED":
				return with(InvalidKey, "key blocked")
			}
		}
		if strings.Contains(msg, "api key not valid") || strings.Contains(msg, "api key expired") {
			return with(InvalidKey, "invalid key")
		}
		if status == 429 {
			for _, id := range e.QuotaIDs {
				if strings.Contains(id, "PerDay") {
					return with(Quota, "daily quota exhausted ("+short(id)+")")
				}
			}
		}
	}

	switch {
	case status == 429:
		return with(RateLimited, "rate limited")
	case status == 401:
		return with(InvalidKey, "invalid key")
	case status == 402:
		return with(Quota, "payment required")
	case status == 403:
		// A region the provider does not serve: every key gets it.
		if strings.Contains(code, "unsupported_country") || strings.Contains(msg, "location is not supported") ||
			strings.Contains(msg, "not available in your country") {
			return with(CallerFault, "refused for this region")
		}
		return with(Forbidden, "forbidden")
	case status == 529 || status == 503:
		return with(Overloaded, "provider overloaded")
	case status >= 500:
		return with(ServerError, "server error")
	}
	return with(CallerFault, "request refused")
}

// The codes and types in which the providers say "no money or quota left".
var quotaCodes = map[string]bool{
	"insufficient_quota":         true, // OpenAI
	"billing_hard_limit_reached": true,
	"billing_not_active":         true,
	"billing_error":              true, // Anthropic 402
	"insufficient_balance":       true, // DeepSeek and others
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80]
	}
	return s
}

// Anthropic: "You will regain access on 2025-08-01 at 00:00 UTC."
var regainRE = regexp.MustCompile(`regain access on (\d{4}-\d{2}-\d{2}) at (\d{2}:\d{2}) UTC`)

// quotaReturns says when a spent quota comes back, where that is known:
// Gemini's daily quotas at midnight Pacific time, Anthropic's usage
// limits on the date in the message.
func quotaReturns(kind state.Kind, e errorBody, body []byte, now time.Time) (time.Time, bool) {
	if m := regainRE.FindSubmatch(body); m != nil {
		if t, err := time.Parse("2006-01-02 15:04", string(m[1])+" "+string(m[2])); err == nil && t.After(now) {
			return t, true
		}
	}
	if kind == state.KindGemini {
		for _, id := range e.QuotaIDs {
			if strings.Contains(id, "PerDay") {
				return nextPacificMidnight(now), true
			}
		}
	}
	return time.Time{}, false
}

// nextPacificMidnight is when Google resets daily quotas. The zone
// database may be missing; then Pacific standard time is close enough.
func nextPacificMidnight(now time.Time) time.Time {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		loc = time.FixedZone("PST", -8*3600)
	}
	t := now.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
}
