// SPDX-License-Identifier: MIT

package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
)

// What the client sees when no key can serve: the status its SDK treats
// right (429 to wait, 503 to give up), the denial's code, a Retry-After
// of at least a second where a key's return is known, and what to do.
func TestDeniedError(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		den        rotate.Denial
		status     int
		retryAfter time.Duration
		says       string
	}{
		{rotate.Denial{Code: rotate.AllKeysCooling, Until: now.Add(27*time.Second + 300*time.Millisecond), Detail: "openai/a cooling 28s"},
			http.StatusTooManyRequests, 27*time.Second + 300*time.Millisecond, "the first frees in 27s, at 12:00:27 (openai/a cooling 28s)"},
		{rotate.Denial{Code: rotate.AllKeysCooling, OnRelease: true, Detail: "openai/a at max_concurrent 1"},
			http.StatusTooManyRequests, 0, "the first frees soon"},
		{rotate.Denial{Code: rotate.AllKeysCooling, Until: now.Add(10 * time.Millisecond)}, http.StatusTooManyRequests, time.Second, "raise [daemon] max_wait"},
		{rotate.Denial{Code: rotate.ProviderUnavailable, Until: now.Add(4 * time.Second), Detail: "openai is failing (503)"},
			http.StatusServiceUnavailable, 4 * time.Second, "openai is failing (503)"},
		{rotate.Denial{Code: rotate.NoKeys, Detail: `no openai key may serve model "gpt-5"`},
			http.StatusServiceUnavailable, 0, "add one with 'llmkey add openai', or check the key's models"},
		{rotate.Denial{Code: rotate.NoUsableKeys, Until: now.Add(5 * time.Minute), Detail: "openai/a parked: 401 invalid key"},
			http.StatusServiceUnavailable, 5 * time.Minute, "'llmkey enable openai/NAME' or 'llmkey reset openai/NAME'"},
		{rotate.Denial{Code: rotate.ConversationKeyBusy, Until: now.Add(12 * time.Second), Detail: "the conversation's key openai/a is cooling 12s"},
			http.StatusTooManyRequests, 12 * time.Second, "the conversation's key openai/a is cooling 12s"},
		{rotate.Denial{Code: rotate.ConversationKeyGone, Detail: "the conversation's key openai/a is no longer in the keyfile: start a new conversation"},
			http.StatusConflict, 0, "start a new conversation"},
	}
	tested := map[rotate.DenialCode]bool{}
	for _, tt := range tests {
		tested[tt.den.Code] = true
	}
	for _, c := range rotate.DenialCodes() {
		if !tested[c] {
			t.Errorf("%s is not tested", c)
		}
	}
	for _, tt := range tests {
		e := deniedError("openai", &tt.den, now)
		if e.Status != tt.status || e.Code != wire.Code(tt.den.Code) || e.RetryAfter != tt.retryAfter || !strings.Contains(e.Message, tt.says) {
			t.Errorf("%s: %d %s retry after %v: %s", tt.den.Code, e.Status, e.Code, e.RetryAfter, e.Message)
		}
	}
}
