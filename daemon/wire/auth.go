// SPDX-License-Identifier: MIT

package wire

import (
	"net/http"
	"strings"
)

// InboundAuthHeaders are the headers in which the SDKs of every kind send
// their key: all of them carry the local token on the way in, and none
// may go upstream.
var InboundAuthHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key"}

// Credentials are the values a request carries where some SDK puts its
// key: a bearer token, x-api-key, x-goog-api-key, or ?key= (Gemini). An
// SDK may send the same key in more than one of them.
func Credentials(r *http.Request) []string {
	var out []string
	if a := r.Header.Get("Authorization"); a != "" {
		if tok, ok := strings.CutPrefix(a, "Bearer "); ok {
			out = append(out, strings.TrimSpace(tok))
		}
	}
	for _, h := range []string{"X-Api-Key", "X-Goog-Api-Key"} {
		if v := r.Header.Get(h); v != "" {
			out = append(out, v)
		}
	}
	if r.URL.RawQuery != "" {
		if v := r.URL.Query().Get(CredentialParam); v != "" {
			out = append(out, v)
		}
	}
	return out
}
