// SPDX-License-Identifier: MIT

package wire

import (
	"testing"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// A socket's refusal of a response says the same of the key as the HTTP
// answer it stands for.
func TestSocketFailure(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		msg   string
		ok    bool
		class rotate.Class
		wait  time.Duration
	}{
		{"a wrapped 429, with its headers", `{"type":"error","status":429,"error":{"type":"rate_limit_exceeded","message":"Rate limit reached"},"headers":{"retry-after":"7","x-request-id":"r"}}`,
			true, rotate.RateLimited, 7 * time.Second},
		{"status_code, and a number in the headers", `{"type":"error","status_code":429,"error":{"message":"slow down"},"headers":{"retry-after-ms":1500}}`,
			true, rotate.RateLimited, 1500 * time.Millisecond},
		{"a spent quota", `{"type":"error","status":429,"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"You exceeded your current quota"}}`,
			true, rotate.Quota, 0},
		{"a key refused", `{"type":"error","status":401,"error":{"message":"Incorrect API key provided: sk-…abcd","code":"invalid_api_key"}}`,
			true, rotate.InvalidKey, 0},
		{"no status: by the code", `{"type":"error","error":{"type":"requests","code":"rate_limit_exceeded","message":"Please try again in 2s."}}`,
			true, rotate.RateLimited, 2 * time.Second},
		{"a caller's mistake", `{"type":"error","status":400,"error":{"message":"Unknown parameter: 'foo'","code":"unknown_parameter"}}`,
			true, rotate.CallerFault, 0},
		{"no status, a code that says nothing of the key", `{"type":"error","error":{"type":"invalid_request_error","code":"invalid_value","message":"x"}}`,
			false, 0, 0},
		{"a failed response: rate limited", `{"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"rate_limit_exceeded","message":"Rate limit reached. Please try again in 20s."}}}`,
			true, rotate.RateLimited, 20 * time.Second},
		{"a failed response: spent", `{"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"insufficient_quota","message":"quota"}}}`,
			true, rotate.Quota, 0},
		{"a failed response: the server's", `{"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"oops"}}}`,
			true, rotate.ServerError, 0},
		{"a failed response without an error", `{"type":"response.failed","response":{"id":"resp_1","status":"failed"}}`,
			true, rotate.ServerError, 0},
		{"a completed response", `{"type":"response.completed","response":{"id":"resp_1","status":"completed","error":null}}`, false, 0, 0},
		{"a delta that mentions an error", `{"type":"response.output_text.delta","delta":"\"error\": 429"}`, false, 0, 0},
		{"not JSON", `{"type":"error",`, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, ok := SocketFailure(state.KindOpenAI, []byte(tt.msg), now)
			if ok != tt.ok || (ok && (o.Class != tt.class || o.Wait != tt.wait)) {
				t.Errorf("got %v %s wait %v (%s), want %v %s wait %v", ok, o.Class, o.Wait, o.Reason, tt.ok, tt.class, tt.wait)
			}
		})
	}
}

func TestSocketRequest(t *testing.T) {
	tests := []struct {
		msg             string
		creates, refers bool
		model           string
	}{
		{`{"type":"response.create","model":"gpt-5","input":"hi"}`, true, false, "gpt-5"},
		{`{"type":"response.create","model":"gpt-5","previous_response_id":"resp_1","input":"more"}`, true, true, "gpt-5"},
		{`{"type":"response.create","model":"gpt-5","previous_response_id":null,"input":"hi"}`, true, false, "gpt-5"},
		{`{"type":"response.create","model":"gpt-5","conversation":"conv_1"}`, true, true, "gpt-5"},
		{`{"type":"response.create","response":{"modalities":["text"],"conversation":"auto","model":"gpt-realtime"}}`, true, true, "gpt-realtime"},
		{`{"type":"response.cancel"}`, false, false, ""},
		{`{"type":"input_audio_buffer.append","audio":"response.create"}`, false, false, ""},
	}
	for _, tt := range tests {
		creates, model, refers := SocketRequest([]byte(tt.msg))
		if creates != tt.creates || refers != tt.refers || model != tt.model {
			t.Errorf("%s: creates %v model %q refers %v", tt.msg, creates, model, refers)
		}
	}
}
