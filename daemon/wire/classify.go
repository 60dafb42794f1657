// SPDX-License-Identifier: MIT

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
		o := rotate.Outcome{Class: rotate.Success, Status: status}
		o.Wait, o.WaitSource = ResetWhenExhausted(h, now)
		if o.Wait > 0 {
			o.Reason = "remaining 0 until reset (" + o.WaitSource + ")"
		}
		o.Left, o.LeftFor = Headroom(h, now)
		return o
	}
	e, _ := parseErrorBody(body)
	o := rotate.Outcome{Status: status}
	o.Wait, o.WaitSource = RetryAfter(h, body, now)
	o.Class, o.Reason = classify(kind, status, e, body)
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

func classify(kind state.Kind, status int, e errorBody, body []byte) (rotate.Class, string) {
	code := strings.ToLower(e.Code)
	typ := strings.ToLower(e.Type)
	msg := strings.ToLower(e.Message)
	with := func(c rotate.Class, what string) (rotate.Class, string) {
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
		return with(rotate.Quota, "quota or billing exhausted")
	}
	if kind == state.KindGemini {
		for _, r := range e.Reasons {
			switch r {
			case "API_KEY_INVALID", "API_KEY_EXPIRED":
				return with(rotate.InvalidKey, "invalid key")
			case "API_KEY_SERVICE_BLOCKED", "CONSUMER_SUSPENDED", "SERVICE_DISABLED":
				return with(rotate.InvalidKey, "key blocked")
			}
		}
		if strings.Contains(msg, "api key not valid") || strings.Contains(msg, "api key expired") {
			return with(rotate.InvalidKey, "invalid key")
		}
		if status == 429 {
			for _, id := range e.QuotaIDs {
				if strings.Contains(id, "PerDay") {
					return with(rotate.Quota, "daily quota exhausted ("+short(id)+")")
				}
			}
		}
	}

	switch {
	case status == 429:
		return with(rotate.RateLimited, "rate limited")
	case status == 401:
		return with(rotate.InvalidKey, "invalid key")
	case status == 402:
		return with(rotate.Quota, "payment required")
	case status == 403:
		// A region the provider does not serve: every key gets it.
		if strings.Contains(code, "unsupported_country") || strings.Contains(msg, "location is not supported") ||
			strings.Contains(msg, "not available in your country") {
			return with(rotate.CallerFault, "refused for this region")
		}
		return with(rotate.Forbidden, "forbidden")
	case status == 529 || status == 503:
		return with(rotate.Overloaded, "provider overloaded")
	case status >= 500:
		return with(rotate.ServerError, "server error")
	}
	return with(rotate.CallerFault, "request refused")
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
// midnight in US Pacific time. It follows the US daylight-saving rule
// (second Sunday of March to first Sunday of November, at 2:00 local)
// instead of loading the zone database, which would be a file read on
// every daily-quota answer, and may be missing.
func nextPacificMidnight(now time.Time) time.Time {
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
