// SPDX-License-Identifier: MIT

package wire

import (
	"net/http"
	"testing"
	"time"

	_ "time/tzdata" // the zone database for the tests of nextPacificMidnight, wherever they run

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

func TestClassify(t *testing.T) {
	const (
		oa = state.KindOpenAI
		an = state.KindAnthropic
		ge = state.KindGemini
	)
	for _, tc := range []struct {
		name   string
		kind   state.Kind
		status int
		body   string
		want   rotate.Class
	}{
		{"ok", oa, 200, "", rotate.Success},
		{"openai rate limit", oa, 429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, rotate.RateLimited},
		{"openai insufficient_quota", oa, 429, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, rotate.Quota},
		{"openai billing hard limit", oa, 400, `{"error":{"message":"Billing hard limit has been reached","type":"invalid_request_error","code":"billing_hard_limit_reached"}}`, rotate.Quota},
		{"openai invalid key", oa, 401, `{"error":{"message":"Incorrect API key provided: sk-…abcd.","type":"invalid_request_error","code":"invalid_api_key"}}`, rotate.InvalidKey},
		{"openai model forbidden", oa, 403, `{"error":{"message":"You are not allowed to sample from this model","type":"invalid_request_error","code":"model_not_found"}}`, rotate.Forbidden},
		{"openai region", oa, 403, `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported"}}`, rotate.CallerFault},
		{"openai overloaded", oa, 503, `{"error":{"message":"The engine is currently overloaded"}}`, rotate.Overloaded},
		{"openai 500", oa, 500, `{"error":{"message":"The server had an error"}}`, rotate.ServerError},
		{"openai 502 html", oa, 502, `<html>bad gateway</html>`, rotate.ServerError},
		{"openai bad request", oa, 400, `{"error":{"message":"Invalid value for 'messages'","type":"invalid_request_error","param":"messages","code":null}}`, rotate.CallerFault},
		{"openai unknown model", oa, 404, `{"error":{"message":"The model does not exist","code":"model_not_found"}}`, rotate.CallerFault},
		{"too large", oa, 413, ``, rotate.CallerFault},
		{"unprocessable", oa, 422, `{"detail":"bad"}`, rotate.CallerFault},
		{"anthropic rate limit", an, 429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, rotate.RateLimited},
		{"anthropic credit", an, 400, `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}`, rotate.Quota},
		{"anthropic usage limit", an, 400, `{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."}}`, rotate.Quota},
		{"anthropic billing_error", an, 402, `{"type":"error","error":{"type":"billing_error","message":"billing"}}`, rotate.Quota},
		{"anthropic auth", an, 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, rotate.InvalidKey},
		{"anthropic permission", an, 403, `{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}`, rotate.Forbidden},
		{"anthropic overloaded", an, 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, rotate.Overloaded},
		{"anthropic bad request", an, 400, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}`, rotate.CallerFault},
		{"gemini per minute", ge, 429, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]}]}}`, rotate.RateLimited},
		{"gemini per day", ge, 429, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}`, rotate.Quota},
		{"gemini invalid key is a 400", ge, 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`, rotate.InvalidKey},
		{"gemini suspended", ge, 403, `{"error":{"code":403,"message":"Permission denied: Consumer has been suspended.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED"}]}}`, rotate.InvalidKey},
		{"gemini location", ge, 400, `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`, rotate.CallerFault},
		{"gemini bad request", ge, 400, `{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}`, rotate.CallerFault},
		{"gemini unavailable", ge, 503, `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, rotate.Overloaded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Classify(tc.kind, tc.status, http.Header{}, []byte(tc.body), t0)
			if o.Class != tc.want {
				t.Errorf("got %v (%s), want %v", o.Class, o.Reason, tc.want)
			}
			if tc.want != rotate.Success && o.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

func TestQuotaReturnTimes(t *testing.T) {
	o := Classify(state.KindGemini, 429, http.Header{}, []byte(`{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel"}]}]}}`), t0)
	if o.Class != rotate.Quota || o.Until.IsZero() || o.Until.Sub(t0) <= 0 || o.Until.Sub(t0) > 24*time.Hour {
		t.Errorf("gemini daily quota returns at %v (now %v)", o.Until, t0)
	}
	if h := o.Until.In(time.FixedZone("", -8*3600)).Hour(); h != 0 && h != 1 {
		t.Errorf("not midnight Pacific: %v", o.Until)
	}
	o = Classify(state.KindAnthropic, 400, http.Header{}, []byte(`{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC."}}`), t0)
	if want := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !o.Until.Equal(want) {
		t.Errorf("anthropic usage limit returns at %v, want %v", o.Until, want)
	}
}

func TestSuccessWithNothingLeftCoolsPreemptively(t *testing.T) {
	o := Classify(state.KindOpenAI, 200, hdr("X-Ratelimit-Remaining-Requests", "0", "X-Ratelimit-Reset-Requests", "2s"), nil, t0)
	if o.Class != rotate.Success || o.Wait != 2*time.Second {
		t.Errorf("got %v wait %v", o.Class, o.Wait)
	}
}

// The daily reset is the next midnight in America/Los_Angeles, from the
// zone database, in UTC, across both changes of offset; the rule that
// serves where the system has no zone database gives the same instants.
func TestNextPacificMidnightAcrossDaylightSaving(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct{ what, now, want string }{
		{"the last second of a PST day", "2025-03-09T07:59:59Z", "2025-03-09T08:00:00Z"},
		{"the midnight before clocks go forward", "2025-03-09T08:00:00Z", "2025-03-10T07:00:00Z"},
		{"the hour skipped", "2025-03-09T10:30:00Z", "2025-03-10T07:00:00Z"},
		{"the first PDT day", "2025-03-10T06:59:59Z", "2025-03-10T07:00:00Z"},
		{"the last second of a PDT day", "2025-11-02T06:59:59Z", "2025-11-02T07:00:00Z"},
		{"the midnight before clocks go back", "2025-11-02T07:00:00Z", "2025-11-03T08:00:00Z"},
		{"01:30 PDT, the first time", "2025-11-02T08:30:00Z", "2025-11-03T08:00:00Z"},
		{"01:30 PST, the second time", "2025-11-02T09:30:00Z", "2025-11-03T08:00:00Z"},
		{"the new year, UTC ahead", "2025-12-31T23:30:00Z", "2026-01-01T08:00:00Z"},
		{"a leap day", "2028-02-29T12:00:00Z", "2028-03-01T08:00:00Z"},
		{"the spring change of 2030", "2030-03-10T09:59:59Z", "2030-03-11T07:00:00Z"},
		{"the autumn change of 2030", "2030-11-03T08:30:00Z", "2030-11-04T08:00:00Z"},
	} {
		now, want := utc(tc.now), utc(tc.want)
		got, zone, rule := nextPacificMidnight(now), nextMidnightIn(now, la), nextMidnightIn(now, nil)
		if !got.Equal(want) || got.Location() != time.UTC || !zone.Equal(want) || !rule.Equal(want) {
			t.Errorf("%s, at %s: %v (zone %v, rule %v), want %v", tc.what, tc.now, got, zone, rule, want)
		}
	}
	for day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC); day.Year() <= 2030; day = day.AddDate(0, 0, 1) {
		for step := time.Duration(0); step < 24*time.Hour; step += 30 * time.Minute {
			for _, now := range []time.Time{day.Add(step), day.Add(step - time.Second)} {
				if zone, rule := nextMidnightIn(now, la), nextMidnightIn(now, nil); !zone.Equal(rule) || zone.In(la).Hour() != 0 || !zone.After(now) || zone.Sub(now) > 25*time.Hour {
					t.Fatalf("at %v: zone %v, rule %v", now, zone, rule)
				}
			}
		}
	}
}
