// SPDX-License-Identifier: MIT

package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// A hostile upstream that echoes the key in its error's headers and body,
// in other case, JSON-escaped, split across lines or across the cut at
// 1 MiB, never gets it to the client or the log.
func TestEchoedKeyNeverReachesTheClient(t *testing.T) {
	escaped := ""
	for _, r := range testSecret {
		escaped += fmt.Sprintf(`\u%04x`, r)
	}
	half := len(testSecret) / 2
	bodies := []string{
		`{"error":{"message":"bad key ` + testSecret + `"}}`,
		`{"error":{"message":"bad key ` + strings.ToUpper(testSecret) + `"}}`,
		`{"error":{"message":"bad key ` + escaped + `"}}`,
		`{"error":{"message":"bad key ` + testSecret[:half] + `\n` + testSecret[half:] + `"}}`,
		`{"error":{"message":"bad key ` + testSecret[:half] + "\r\n " + testSecret[half:] + `"}}`,
		strings.Repeat(" ", maxErrorBody-half) + testSecret,
		`{"error":{"code":"` + strings.ToLower(testSecret) + `","message":"x"}}`,
	}
	for i, body := range bodies {
		d, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Echo", strings.ToLower(testSecret))
			w.Header().Set("X-Key", "key="+testSecret)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, body)
		}), `max_wait = "0s"`)
		var logs syncBuffer
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
		resp, err := post(t, t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen := fmt.Sprint(resp.Header) + string(b) + logs.String()
		for p, ps := range d.pools {
			views, _, _ := ps.View()
			seen += fmt.Sprint(p, views)
		}
		// Not the key, nor any 12 characters of it past its public prefix.
		for j := len("sk-proj-"); j+12 <= len(testSecret); j++ {
			if leaks(seen, testSecret[j:j+12]) {
				t.Errorf("body %d: %q of the key got through:\n%.400s", i, testSecret[j:j+12], seen)
				break
			}
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("body %d: status %d", i, resp.StatusCode)
		}
	}
}

func TestLeaks(t *testing.T) {
	for s, want := range map[string]bool{
		"sk-abc":          true,
		"SK-ABC":          true,
		`\u0073k-abc`:     true,
		`sk-\/abc`:        false,
		"sk-a\nbc":        true,
		`sk-a\nbc`:        true,
		"sk-ab":           false,
		"xx sk-\t a b c ": true,
	} {
		if got := leaks(s, "sk-abc"); got != want {
			t.Errorf("leaks(%q) = %v", s, got)
		}
	}
}
