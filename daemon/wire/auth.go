package wire

import (
	"net/http"
	"net/url"
	"strings"
)

// InboundAuthHeaders are the headers in which the SDKs of every kind send
// their key: all of them carry the local token on the way in, and none
// may go upstream.
var InboundAuthHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key"}

// Credential is the key a request carries where some SDK puts its key:
// a bearer token, x-api-key, x-goog-api-key, or ?key= (Gemini). An SDK
// may send the same key in more than one of them; ok is false when the
// request carries none, or two that differ.
func Credential(r *http.Request) (cred string, ok bool) {
	if a := header(r.Header, "Authorization"); a != "" {
		if tok, bearer := strings.CutPrefix(a, "Bearer "); bearer {
			cred, ok = strings.TrimSpace(tok), true
		}
	}
	for _, v := range [...]string{header(r.Header, "X-Api-Key"), header(r.Header, "X-Goog-Api-Key"), queryCredential(r.URL.RawQuery)} {
		switch {
		case v == "":
		case !ok:
			cred, ok = v, true
		case v != cred:
			return "", false
		}
	}
	return cred, ok
}

// queryCredential is the value of ?key=, where Gemini clients may put
// their key ("": none).
func queryCredential(raw string) string {
	if !strings.Contains(raw, CredentialParam) {
		return ""
	}
	return (&url.URL{RawQuery: raw}).Query().Get(CredentialParam)
}
