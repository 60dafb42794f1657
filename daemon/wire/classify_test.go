// SPDX-License-Identifier: MIT

package wire

import (
	"net/http"
	"testing"
	"time"

	_ "time/tzdata" // the reference for nextPacificMidnight, in the test only

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

// The daily reset follows the zone database's America/Los_Angeles, across
// both changes of offset, without reading it.
func TestNextPacificMidnightMatchesTheZoneDatabase(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	for now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC); now.Year() < 2028; now = now.Add(37 * time.Minute) {
		l := now.In(la)
		want := time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, la)
		if got := nextPacificMidnight(now); !got.Equal(want) {
			t.Fatalf("at %v: %v, want %v", now, got, want.UTC())
		}
	}
}
