// SPDX-License-Identifier: MIT

package wire

import (
	"net/http"
	"testing"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestRetryAfter(t *testing.T) {
	geminiRetry := `{"error":{"code":429,"message":"You exceeded your current quota. Please retry in 45.5s.","status":"RESOURCE_EXHAUSTED",
	  "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
	  {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"45s"}]}}`
	for _, tc := range []struct {
		name   string
		h      http.Header
		body   string
		want   time.Duration
		source string
	}{
		{"nothing", hdr(), `{"error":{"message":"slow down"}}`, 0, ""},
		{"retry-after seconds", hdr("Retry-After", "30"), "", 30 * time.Second, "retry-after"},
		{"retry-after fraction", hdr("Retry-After", "1.5"), "", 1500 * time.Millisecond, "retry-after"},
		{"retry-after date", hdr("Retry-After", t0.Add(90*time.Second).Format(http.TimeFormat)), "", 90 * time.Second, "retry-after"},
		{"retry-after past date", hdr("Retry-After", t0.Add(-time.Hour).Format(http.TimeFormat)), "", 0, "retry-after"},
		{"retry-after-ms wins", hdr("Retry-After-Ms", "250", "Retry-After", "30"), "", 250 * time.Millisecond, "retry-after-ms"},
		{"garbage retry-after falls through", hdr("Retry-After", "soon"), `{"error":{"message":"Please try again in 20s."}}`, 20 * time.Second, "message"},
		{"gemini RetryInfo", hdr(), geminiRetry, 45 * time.Second, "RetryInfo"},
		{"gemini RetryInfo in an array", hdr(), "[" + geminiRetry + "]", 45 * time.Second, "RetryInfo"},
		{"openai reset when requests are out", hdr("X-Ratelimit-Remaining-Requests", "0", "X-Ratelimit-Reset-Requests", "6m0s"), "", 6 * time.Minute, "x-ratelimit-reset-requests"},
		{"openai reset ignored while some remain", hdr("X-Ratelimit-Remaining-Requests", "3", "X-Ratelimit-Reset-Requests", "6m0s"), "", 0, ""},
		{"openai tokens reset in ms", hdr("X-Ratelimit-Remaining-Tokens", "0", "X-Ratelimit-Reset-Tokens", "120ms"), "", 120 * time.Millisecond, "x-ratelimit-reset-tokens"},
		{"anthropic reset", hdr("Anthropic-Ratelimit-Requests-Remaining", "0", "Anthropic-Ratelimit-Requests-Reset", t0.Add(42*time.Second).Format(time.RFC3339)), "", 42 * time.Second, "anthropic-ratelimit-requests-reset"},
		{"anthropic input tokens", hdr("Anthropic-Ratelimit-Input-Tokens-Remaining", "0", "Anthropic-Ratelimit-Input-Tokens-Reset", t0.Add(7*time.Second).Format(time.RFC3339)), "", 7 * time.Second, "anthropic-ratelimit-input-tokens-reset"},
		{"openai phrase", hdr(), `{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29000. Please try again in 20s.","type":"tokens","code":"rate_limit_exceeded"}}`, 20 * time.Second, "message"},
		{"phrase in ms", hdr(), `Please try again in 6ms.`, 6 * time.Millisecond, "message"},
		{"phrase compound", hdr(), `Please try again in 1m30.5s.`, 90500 * time.Millisecond, "message"},
		{"phrase retry in", hdr(), `Please retry in 58.2s.`, 58200 * time.Millisecond, "message"},
		{"phrase in words", hdr(), `retry after 20 seconds`, 20 * time.Second, "message"},
		{"phrase capped", hdr(), `try again in 999999999h`, MaxWait, "message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src := RetryAfter(tc.h, []byte(tc.body), t0)
			if got != tc.want || src != tc.source {
				t.Errorf("got %v from %q, want %v from %q", got, src, tc.want, tc.source)
			}
		})
	}
}

func FuzzRetryAfter(f *testing.F) {
	f.Add("30", "", "", `{"error":{"message":"Please try again in 20s."}}`)
	f.Add("", "250", "6m0s", `[{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"45s"}]}}]`)
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT", "x", "1h2m3.5s", `retry in 58.2s`)
	f.Fuzz(func(t *testing.T, ra, ram, reset, body string) {
		h := hdr("Retry-After", ra, "Retry-After-Ms", ram, "X-Ratelimit-Remaining-Tokens", "0", "X-Ratelimit-Reset-Tokens", reset,
			"Anthropic-Ratelimit-Requests-Remaining", "0", "Anthropic-Ratelimit-Requests-Reset", reset)
		d, src := RetryAfter(h, []byte(body), t0)
		if d < 0 || d > MaxWait {
			t.Fatalf("wait %v out of range", d)
		}
		if d > 0 && src == "" {
			t.Fatalf("wait %v without a source", d)
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add(429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`)
	f.Add(400, `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low"}}`)
	f.Add(429, `[{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel"}]}]}}]`)
	f.Add(400, `{"error":{"code":400,"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}`)
	f.Add(529, `{"error":{"code":7}}`)
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 100 || status > 999 {
			return
		}
		for _, kind := range []state.Kind{state.KindOpenAI, state.KindAnthropic, state.KindGemini} {
			o := Classify(kind, status, http.Header{}, []byte(body), t0)
			if (status < 400) != (o.Class == rotate.Success) {
				t.Fatalf("status %d classified %v", status, o.Class)
			}
			if o.Class != rotate.Success && o.Reason == "" {
				t.Fatal("no reason")
			}
			if len(o.Reason) > 200 {
				t.Fatalf("reason too long: %d", len(o.Reason))
			}
			if o.Wait < 0 || o.Wait > MaxWait {
				t.Fatalf("wait %v", o.Wait)
			}
		}
	})
}
