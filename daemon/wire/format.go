package wire

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/llmkey/llmkey/state"
)

// Format is what differs between the wire formats of one kind, apart
// from what its answers mean (classify.go), how long they say to wait
// (wait.go), its usage (usage.go) and its error shape (errors.go). Every
// kind has one; TestEveryKindHasAWireFormat fails when a field is
// missing.
type Format struct {
	// AuthHeader is the header the kind's own SDK sends the key in
	// (canonical), and AuthPrefix what comes before the key there.
	AuthHeader, AuthPrefix string
	// KeyHeaders name the headers that go upstream with one key only,
	// from the key's own fields (OpenAI's organization and project); a
	// client's own are never forwarded.
	KeyHeaders []KeyHeader
	// ModelInPath: the model is named in the route (Gemini's
	// /models/NAME:method), not in the JSON body.
	ModelInPath bool
	// ProbePath is the cheapest call that proves a key, under base_url
	// (listing the models), and ProbeHeaders what it needs besides.
	ProbePath    string
	ProbeHeaders [][2]string
	// StoresResponses: its answers carry response ids that later
	// requests refer to (previous_response_id), over HTTP or a socket.
	StoresResponses bool
	// UsageIfAsked is the route (suffix) whose streams report their
	// usage only when the request asks (stream_options.include_usage).
	UsageIfAsked string
}

// KeyHeader is a header sent with one key only, with the key's value.
type KeyHeader struct {
	Name  string // canonical
	Value func(k state.Key) string
}

var formats = map[state.Kind]*Format{
	state.KindOpenAI: {
		AuthHeader: "Authorization", AuthPrefix: "Bearer ",
		KeyHeaders: []KeyHeader{
			{"Openai-Organization", func(k state.Key) string { return k.Organization }},
			{"Openai-Project", func(k state.Key) string { return k.Project }},
		},
		ProbePath:       "/models",
		StoresResponses: true,
		UsageIfAsked:    "/chat/completions",
	},
	state.KindAnthropic: {
		AuthHeader: "X-Api-Key",
		ProbePath:  "/v1/models", ProbeHeaders: [][2]string{{"Anthropic-Version", "2023-06-01"}},
	},
	state.KindGemini: {
		AuthHeader:  "X-Goog-Api-Key",
		ModelInPath: true,
		ProbePath:   "/v1beta/models",
	},
}

// DefaultKind is the format most compatible providers speak: For's
// answer for a kind it does not know, and the error shape of a route to
// no provider.
const DefaultKind = state.KindOpenAI

// For is kind's wire format; an unknown kind is DefaultKind's.
func For(kind state.Kind) *Format {
	if f, ok := formats[kind]; ok {
		return f
	}
	return formats[DefaultKind]
}

// AuthHeader is the header a kind's own SDK sends the key in, canonical.
func AuthHeader(kind state.Kind) string { return For(kind).AuthHeader }

// AuthValue is the value of AuthHeader that carries secret.
func AuthValue(kind state.Kind, secret string) string { return For(kind).AuthPrefix + secret }

// KeyHeaderValues are the headers that go upstream with k only, by
// kind: a nil value removes a client's own.
func KeyHeaderValues(kind state.Kind, k state.Key) [][]string {
	hs := For(kind).KeyHeaders
	if len(hs) == 0 {
		return nil
	}
	out := make([][]string, len(hs))
	for i, h := range hs {
		if v := h.Value(k); v != "" {
			out[i] = []string{v}
		}
	}
	return out
}

// ProbeRequest is the request that proves k against the provider at
// baseURL: the cheapest call, with the key where its SDK sends it.
func ProbeRequest(kind state.Kind, baseURL, secret string) (*http.Request, error) {
	f := For(kind)
	req, err := http.NewRequest(http.MethodGet, baseURL+f.ProbePath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(f.AuthHeader, f.AuthPrefix+secret)
	for _, h := range f.ProbeHeaders {
		req.Header.Set(h[0], h[1])
	}
	return req, nil
}

// Rename is a request's route and body with its model renamed to model
// (a fallback's name for it), wherever the kind names it; every other
// byte stays.
func Rename(kind state.Kind, rest string, body []byte, model string) (string, []byte) {
	if For(kind).ModelInPath {
		return withModelPath(rest, model), body
	}
	return rest, WithModel(body, Inspect(kind, rest, body), model)
}

// RenameSafe reports whether model may be written where kind names it:
// in a route, only as one plain path segment, which cannot take the
// request elsewhere under base_url.
func RenameSafe(kind state.Kind, model string) bool {
	if !For(kind).ModelInPath {
		return true
	}
	return model != "" && model != "." && model != ".." && !strings.ContainsAny(model, "/\\?#%:") &&
		strings.IndexFunc(model, func(r rune) bool { return r <= ' ' || r == 0x7f }) < 0
}

// withModelPath is a Gemini route with its model renamed:
// /v1beta/models/NAME:generateContent.
func withModelPath(rest, model string) string {
	i := strings.Index(rest, "/models/")
	if i < 0 {
		return rest
	}
	m := rest[i+len("/models/"):]
	j := strings.IndexAny(m, ":/?")
	if j < 0 {
		j = len(m)
	}
	return rest[:i+len("/models/")] + url.PathEscape(model) + m[j:]
}

// CredentialParam is the query parameter in which Gemini clients may
// send their key (?key=): the local token, which must never go upstream.
const CredentialParam = "key"

// StripCredentials removes every key= parameter, however it is written
// (%6Bey=, key=a;b) and whether or not the rest of the query parses;
// every other byte of it stays.
func StripCredentials(raw string) string {
	if !strings.Contains(raw, CredentialParam) && !strings.Contains(raw, "%") {
		return raw
	}
	var kept []string
	for _, part := range strings.Split(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		if strings.EqualFold(name, CredentialParam) {
			continue
		}
		if n, err := url.QueryUnescape(name); err == nil && strings.EqualFold(n, CredentialParam) {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}
