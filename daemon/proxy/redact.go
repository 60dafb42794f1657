package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/state"
)

// What an upstream sends back may hold a key: an error that quotes it,
// or a hostile upstream that echoes it. Every configured secret written
// out plainly is masked; the key an attempt sent is also looked for
// written otherwise (in other case, JSON-escaped, split by white space
// or an escaped line break), and what holds it so is withheld whole.

// redact replaces every configured secret in s by its masked form.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, state.Mask(sec))
		}
	}
	return s
}

// leaks reports whether s holds secret in any of the ways it may be
// written: in any case, with JSON escapes (\u0073, \/), and with white
// space or escaped line breaks inside.
func leaks(s, secret string) bool {
	if secret == "" {
		return false
	}
	if strings.Contains(s, secret) {
		return true
	}
	return strings.Contains(canonical(s), canonical(secret))
}

// canonical is s lower-cased, JSON escapes decoded, and white space
// (plain or escaped) removed.
func canonical(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch n := s[i+1]; n {
			case 'u':
				if i+6 <= len(s) {
					if r, ok := hex4(s[i+2 : i+6]); ok {
						if !unicode.IsSpace(r) {
							b.WriteRune(unicode.ToLower(r))
						}
						i += 6
						continue
					}
				}
			case 'n', 'r', 't', 'b', 'f':
				i += 2
				continue
			case '/', '\\', '"':
				b.WriteByte(n)
				i += 2
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			b.WriteRune(unicode.ToLower(r))
		}
		i += size
	}
	return b.String()
}

func hex4(s string) (rune, bool) {
	var r rune
	for _, c := range []byte(s) {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// cleanErrorBody is an upstream's error body (with status) as the client
// may see it: every configured secret masked, cut at maxErrorBody; or,
// when it holds key written otherwise, llmkey's own error in its place
// (withheld).
func cleanErrorBody(up *Upstream, status int, body []byte, key string, secrets []string) (clean []byte, withheld bool) {
	s := redact(string(body), secrets)
	if leaks(s, key) {
		return wire.ErrorBody(up.Kind, wire.Error{Status: status, Code: wire.UpstreamLeak,
			Message: fmt.Sprintf("%s answered %d with an error that held the key; llmkey withheld it", up.Name, status)}), true
	}
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody]
	}
	return []byte(s), false
}

// withheld stands in for a header value that held the key.
const withheld = "(withheld by llmkey: it held the key)"

// cleanHeader masks every configured secret in h's values, and withholds
// a value that holds secret (the attempt's key) written otherwise.
func cleanHeader(h http.Header, secret string, secrets []string) {
	for k, vv := range h {
		for i, v := range vv {
			if leaks(v, secret) || leaks(k, secret) {
				if r := redact(v, secrets); !leaks(r, secret) {
					vv[i] = r
				} else {
					vv[i] = withheld
				}
			}
		}
	}
}

// maskHeader masks secret where h's values hold it as it is: cheap
// enough for every answer.
func maskHeader(h http.Header, secret string) {
	for _, vv := range h {
		for i, v := range vv {
			if strings.Contains(v, secret) {
				vv[i] = strings.ReplaceAll(v, secret, state.Mask(secret))
			}
		}
	}
}
