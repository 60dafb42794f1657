package wire

import (
	"bytes"
	"strings"
	"unicode"

	"github.com/llmkey/llmkey/daemon/wire/jsonscan"
	"github.com/llmkey/llmkey/state"
)

// Request is what the proxy reads of a request: the model it asks for,
// and for an OpenAI-format chat stream that did not say whether to include
// usage, where its stream_options are (start < 0: absent).
type Request struct {
	// Model is the model asked for, fit to key usage rows and metric
	// labels (ModelLabel); "" when the request names none.
	Model string
	// WantsUsage: a chat stream that left stream_options.include_usage
	// unsaid, which WithStreamUsage can ask for.
	WantsUsage  bool
	optsStart   int
	optsEnd     int
	optsHasKeys bool
}

const maxModelName = 200

// ModelLabel is a client's model name made fit to key usage rows, to be a
// metric label and to be printed: valid UTF-8 (the Prometheus client
// refuses anything else), no control characters (a terminal would obey
// them), and a name's length, not a payload's.
func ModelLabel(m string) string {
	if len(m) > maxModelName {
		m = m[:maxModelName]
	}
	m = strings.ToValidUTF8(m, "\uFFFD")
	if strings.IndexFunc(m, unicode.IsControl) >= 0 {
		// Control characters would reach a terminal from 'llmkey usage'.
		m = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return '\uFFFD'
			}
			return r
		}, m)
	}
	return m
}

// Inspect reads the model from the JSON body (OpenAI, Anthropic) or the
// path (Gemini: /v1beta/models/NAME:generateContent), and whether a chat
// stream left stream_options.include_usage unsaid. It scans the body's
// top level only.
func Inspect(kind state.Kind, rest string, body []byte) Request {
	info := Request{optsStart: -1}
	if i := strings.Index(rest, "/models/"); i >= 0 && kind == state.KindGemini {
		m := rest[i+len("/models/"):]
		if j := strings.IndexAny(m, ":/?"); j >= 0 {
			m = m[:j]
		}
		info.Model = ModelLabel(m)
		return info
	}
	if len(body) == 0 || !bytes.Contains(body, []byte(`"model"`)) {
		return info
	}
	stream := false
	ok := jsonscan.Members(body, func(key []byte, vs, ve int) {
		switch string(key) {
		case "model":
			info.Model, _ = jsonscan.String(body[vs:ve])
		case "stream":
			stream = string(body[vs:ve]) == "true"
		case "stream_options":
			info.optsStart, info.optsEnd = vs, ve
		}
	})
	if !ok {
		return Request{}
	}
	info.Model = ModelLabel(info.Model)
	chat := kind == state.KindOpenAI && strings.HasSuffix(strings.TrimSuffix(rest, "/"), "/chat/completions")
	if !chat || !stream {
		return info
	}
	info.WantsUsage = true
	if info.optsStart >= 0 {
		opts := body[info.optsStart:info.optsEnd]
		switch {
		case string(opts) == "null":
		case opts[0] != '{':
			info.WantsUsage = false // not ours to fix
		default:
			jsonscan.Members(opts, func(key []byte, _, _ int) {
				info.optsHasKeys = true
				if string(key) == "include_usage" {
					info.WantsUsage = false // said, either way
				}
			})
		}
	}
	return info
}

// WithStreamUsage asks a chat stream to end with its usage: it adds
// "include_usage":true to stream_options (or the whole stream_options),
// leaving every other byte of the body as it was.
func WithStreamUsage(body []byte, info Request) []byte {
	out := make([]byte, 0, len(body)+40)
	switch {
	case info.optsStart < 0: // no stream_options: the first member
		i := bytes.IndexByte(body, '{')
		out = append(out, body[:i+1]...)
		out = append(out, `"stream_options":{"include_usage":true},`...)
		out = append(out, body[i+1:]...)
	case body[info.optsStart] == 'n': // null
		out = append(out, body[:info.optsStart]...)
		out = append(out, `{"include_usage":true}`...)
		out = append(out, body[info.optsEnd:]...)
	default: // options of the client's own: ours first among them
		i := info.optsStart + 1
		out = append(out, body[:i]...)
		out = append(out, `"include_usage":true`...)
		if info.optsHasKeys {
			out = append(out, ',')
		}
		out = append(out, body[i:]...)
	}
	return out
}

// UpstreamPath is the path a route's rest goes to under the provider's
// base URL. Anthropic's own SDK and Claude Code put /v1 in the path
// (base https://api.anthropic.com); the Vercel AI SDK puts it in the base
// URL, so that its requests come as /messages: both reach /v1/messages.
func UpstreamPath(kind state.Kind, rest string) string {
	if kind == state.KindAnthropic && rest != "" && rest != "/" && rest != "/v1" && !strings.HasPrefix(rest, "/v1/") {
		return "/v1" + rest
	}
	return rest
}
