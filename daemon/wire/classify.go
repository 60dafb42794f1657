package wire

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// Classify reads one upstream answer in the provider's wire format. body
// is the (already redacted) error body; it is ignored for a success.
func Classify(kind state.Kind, status int, h http.Header, body []byte, now time.Time) rotate.Outcome {
	if status < 400 {
		l := limitsOf(h, now)
		o := rotate.Outcome{Class: rotate.Success, Status: status, Wait: l.wait, WaitSource: l.source, Left: l.left, LeftFor: l.resets}
		if o.Wait > 0 {
			o.Reason = "remaining 0 until reset (" + o.WaitSource + ")"
		}
		return o
	}
	e, _ := parseErrorBody(body)
	o := rotate.Outcome{Status: status}
	o.Wait, o.WaitSource = RetryAfter(h, body, now)
	o.Class, o.Reason = classify(kind, status, e)
	if o.Class == rotate.Quota {
		if t, ok := quotaReturns(kind, e, body, now); ok {
			o.Until = t
		}
	}
	if o.Reason == "" {
		o.Reason = fmt.Sprintf("%d %s", status, o.Class)
	}
	o.OrgWide = orgWide(kind, e)
	o.MissingState = missingState(status, e)
	return o
}

// missingState reports whether an error says the stored state the
// request refers to is not there: OpenAI's previous_response_not_found
// ("Previous response with id '…' not found."), a conversation not found,
// Gemini's "CachedContent not found (or permission denied)". Another key,
// of the organisation that stored it, may have it.
func missingState(status int, e errorBody) bool {
	if status != 400 && status != 403 && status != 404 {
		return false
	}
	code, msg := strings.ToLower(e.Code), strings.ToLower(e.Message)
	return code == "previous_response_not_found" ||
		(strings.Contains(msg, "not found") && (strings.Contains(msg, "previous response") || strings.Contains(msg, "conversation with id") || strings.Contains(msg, "cachedcontent")))
}

// orgWide reports whether an error says its limit is the organisation's
// or the project's, not the key's own: OpenAI's "Rate limit reached for
// gpt-4o in organization org-… on tokens per min", Anthropic's "would
// exceed your organization's rate limit", Gemini's quotas (always a
// project's: "for consumer 'project_number:…'").
func orgWide(kind state.Kind, e errorBody) bool {
	msg := strings.ToLower(e.Message)
	if kind == state.KindGemini && len(e.QuotaIDs) > 0 {
		return true
	}
	for _, w := range []string{"organization", "organisation", "in project", "project_number", "for project"} {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

func classify(kind state.Kind, status int, e errorBody) (rotate.Class, string) {
	c, what := classOf(kind, status, e)
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

// classOf is the class of an error answer, and what it is in words.
func classOf(kind state.Kind, status int, e errorBody) (rotate.Class, string) {
	code, typ, msg := strings.ToLower(e.Code), strings.ToLower(e.Type), strings.ToLower(e.Message)
	// Spent money or quota, whatever the status says it is.
	if quotaCodes[code] || quotaCodes[typ] || strings.Contains(msg, "credit balance is too low") ||
		strings.Contains(msg, "reached your specified api usage limits") || strings.Contains(msg, "spend limit") {
		return rotate.Quota, "quota or billing exhausted"
	}
	if kind == state.KindGemini {
		if c, what, ok := googleClass(status, e, msg); ok {
			return c, what
		}
	}
	switch {
	case status == 429:
		return rotate.RateLimited, "rate limited"
	case status == 401:
		return rotate.InvalidKey, "invalid key"
	case status == 402:
		return rotate.Quota, "payment required"
	case status == 403:
		// A region the provider does not serve: every key gets it.
		if strings.Contains(code, "unsupported_country") || strings.Contains(msg, "location is not supported") ||
			strings.Contains(msg, "not available in your country") {
			return rotate.CallerFault, "refused for this region"
		}
		return rotate.Forbidden, "forbidden"
	case status == 529 || status == 503:
		return rotate.Overloaded, "provider overloaded"
	case status >= 500:
		return rotate.ServerError, "server error"
	}
	return rotate.CallerFault, "request refused"
}

// googleClass reads what only Google's errors say: a key refused in the
// error's reasons (a 400 with API_KEY_INVALID), and a daily quota in a
// 429's quota ids; ok is false when they say nothing of the key.
func googleClass(status int, e errorBody, msg string) (rotate.Class, string, bool) {
	for _, r := range e.Reasons {
		switch r {
		case "API_KEY_INVALID", "API_KEY_EXPIRED":
			return rotate.InvalidKey, "invalid key", true
		case "API_KEY_SERVICE_BLOCKED", "CONSUMER_SUSPENDED", "SERVICE_DISABLED":
			return rotate.InvalidKey, "key blocked", true
		}
	}
	if strings.Contains(msg, "api key not valid") || strings.Contains(msg, "api key expired") {
		return rotate.InvalidKey, "invalid key", true
	}
	if status == 429 {
		for _, id := range e.QuotaIDs {
			if strings.Contains(id, "PerDay") {
				return rotate.Quota, "daily quota exhausted (" + short(id) + ")", true
			}
		}
	}
	return 0, "", false
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
var regainRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`regain access on (\d{4}-\d{2}-\d{2}) at (\d{2}:\d{2}) UTC`)
})

// quotaReturns says when a spent quota comes back, where that is known:
// Gemini's daily quotas at midnight Pacific time, Anthropic's usage
// limits on the date in the message.
func quotaReturns(kind state.Kind, e errorBody, body []byte, now time.Time) (time.Time, bool) {
	if m := regainRE().FindSubmatch(body); m != nil {
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

// nextPacificMidnight is when Google resets daily quotas: the next
// midnight in US Pacific time, in UTC.
func nextPacificMidnight(now time.Time) time.Time {
	return nextMidnightIn(now, pacific())
}

// pacific is US Pacific time from the system's zone database, read once;
// nil where there is none (a minimal container). The binary embeds no
// zone database (time/tzdata, some 450 KB, for this one zone): there,
// the US daylight-saving rule serves.
var pacific = sync.OnceValue(func() *time.Location {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		return nil
	}
	return la
})

// nextMidnightIn is the next midnight after now in the zone la, in UTC;
// with no zone, by the US daylight-saving rule (nextPacificMidnightByRule).
func nextMidnightIn(now time.Time, la *time.Location) time.Time {
	if la == nil {
		return nextPacificMidnightByRule(now)
	}
	l := now.In(la)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, la).UTC()
}

// nextPacificMidnightByRule is the next midnight in US Pacific time by the
// US daylight-saving rule since 2007 (second Sunday of March to first
// Sunday of November, at 2:00 local), for a system without the zone
// database.
func nextPacificMidnightByRule(now time.Time) time.Time {
	now = now.UTC()
	local := now.Add(pacificOffset(now))
	y, m, d := local.Date()
	midnight := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	// No change of offset happens near midnight (they are at 2:00), so
	// the offset at that midnight is the one at noon before it: about
	// 4 hours before midnight's wall time, read as UTC.
	return midnight.Add(-pacificOffset(midnight.Add(-4 * time.Hour)))
}

// pacificOffset is US Pacific time's offset from UTC at the instant t.
func pacificOffset(t time.Time) time.Duration {
	y := t.UTC().Year()
	start := nthSunday(y, time.March, 2).Add(10 * time.Hour) // 2:00 PST
	end := nthSunday(y, time.November, 1).Add(9 * time.Hour) // 2:00 PDT
	if !t.Before(start) && t.Before(end) {
		return -7 * time.Hour
	}
	return -8 * time.Hour
}

// nthSunday is the n-th Sunday of month m of year y, at 00:00 UTC.
func nthSunday(y int, m time.Month, n int) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	days := (7 - int(first.Weekday())) % 7
	return first.AddDate(0, 0, days+7*(n-1))
}
