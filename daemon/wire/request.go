package wire

import (
	"bytes"
	"encoding/json"
	"net/http"
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
	// Session names the conversation the request belongs to ("": none),
	// as Conversation says; Pinned when its state is stored upstream.
	Session string
	Pinned  bool
	// modelStart, modelEnd: where the model's value is (modelEnd 0:
	// absent), for WithModel; streamStart, streamEnd, the same of
	// stream's, and stream, whether it is true.
	modelStart, modelEnd   int
	streamStart, streamEnd int
	stream                 bool
}

// Demotable reports whether an Anthropic request may go upstream as a
// stream to be answered as one JSON: a POST to /v1/messages that did not
// ask for a stream.
func (info Request) Demotable(kind state.Kind, method, rest string) bool {
	return kind == state.KindAnthropic && method == http.MethodPost && !info.stream &&
		strings.TrimSuffix(rest, "/") == "/v1/messages" && info.modelEnd > 0
}

// WithStream is body asking for a stream: "stream":true in place of its
// "stream" member, or as its first member.
func WithStream(body []byte, info Request) []byte {
	out := make([]byte, 0, len(body)+16)
	if info.streamEnd > 0 {
		out = append(out, body[:info.streamStart]...)
		out = append(out, "true"...)
		return append(out, body[info.streamEnd:]...)
	}
	i := bytes.IndexByte(body, '{')
	out = append(out, body[:i+1]...)
	out = append(out, `"stream":true`...)
	if j := jsonscan.SkipSpace(body, i+1); j < len(body) && body[j] != '}' {
		out = append(out, ',')
	}
	return append(out, body[i+1:]...)
}

// Conversations are named in the session table by what refers to them,
// each in its namespace: what a pinned reference names was created by
// the key that served its request (Creates), and only that key's
// organisation can read it.
const (
	refResponse     = "response:"     // previous_response_id, /responses/ID
	refConversation = "conversation:" // conversation, /conversations/ID
	refCached       = "cached:"       // Gemini cachedContent, /cachedContents/ID
	refPromptKey    = "prompt_cache_key:"
	refHeader       = "session:" // a client's session header
)

// ResponseRef is how a request that refers to the response id names its
// conversation.
func ResponseRef(id string) string { return refResponse + id }

// SessionHeaders are the headers in which agents name their session:
// Claude Code's, and Codex's. A session is kept on its key for its prompt
// cache; it may move when its key cannot serve.
var SessionHeaders = []string{"X-Claude-Code-Session-Id", "X-Codex-Session-Id", "Session_id", "Conversation_id"}

// SessionOf is the session a request's headers name ("": none). The
// names are canonical: looked up as they are, not canonicalized again on
// every request.
func SessionOf(h http.Header) string {
	for _, name := range SessionHeaders {
		if v := header(h, name); v != "" {
			return refHeader + v
		}
	}
	return ""
}

// Creates is the namespace of what a successful answer to rest creates
// and names by its id (a stored response, a conversation, a cached
// content), or "" for a route that creates nothing a later request
// refers to.
func Creates(kind state.Kind, method, rest string) string {
	if method != http.MethodPost {
		return ""
	}
	r := strings.TrimSuffix(rest, "/")
	switch {
	case kind == state.KindOpenAI && strings.HasSuffix(r, "/responses"):
		return refResponse
	case kind == state.KindOpenAI && strings.HasSuffix(r, "/conversations"):
		return refConversation
	case kind == state.KindGemini && strings.HasSuffix(r, "/cachedContents"):
		return refCached
	}
	return ""
}

// pathRef is the stored object a route addresses by id (GET
// /v1/responses/ID, /v1/conversations/ID/items, DELETE
// /v1beta/cachedContents/ID), or "".
func pathRef(kind state.Kind, rest string) string {
	for _, p := range []struct {
		kind     state.Kind
		seg, ns  string
		keepName bool
	}{{state.KindOpenAI, "/responses/", refResponse, false}, {state.KindOpenAI, "/conversations/", refConversation, false},
		{state.KindGemini, "/cachedContents/", refCached, true}} {
		if p.kind != kind {
			continue
		}
		i := strings.Index(rest, p.seg)
		if i < 0 {
			continue
		}
		id := rest[i+len(p.seg):]
		if j := strings.IndexAny(id, "/:?"); j >= 0 {
			id = id[:j]
		}
		if id == "" || id == "input_items" {
			continue
		}
		if p.keepName { // Gemini names it "cachedContents/ID"
			id = "cachedContents/" + id
		}
		return p.ns + id
	}
	return ""
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
//
// It also names the conversation the request belongs to, pinned first:
// the stored state it refers to (previous_response_id, conversation,
// Gemini's cachedContent, or the object its path addresses), else its
// prompt_cache_key (kept on a key for its cache, free to move).
func Inspect(kind state.Kind, rest string, body []byte) Request {
	info := Request{optsStart: -1}
	if ref := pathRef(kind, rest); ref != "" {
		info.Session, info.Pinned = ref, true
	}
	if For(kind).ModelInPath {
		info.inspectPath(rest, body)
		return info
	}
	if len(body) == 0 || !bytes.Contains(body, []byte(`"`)) {
		return info
	}
	promptKey, ok := info.inspectBody(body)
	if !ok {
		return Request{Session: info.Session, Pinned: info.Pinned}
	}
	if info.Session == "" && promptKey != "" {
		info.Session = refPromptKey + promptKey
	}
	info.Model = ModelLabel(info.Model)
	if suffix := For(kind).UsageIfAsked; info.stream && suffix != "" && strings.HasSuffix(strings.TrimSuffix(rest, "/"), suffix) {
		info.WantsUsage = info.usageUnsaid(body)
	}
	return info
}

// inspectPath reads a request whose model is named in its route
// (/v1beta/models/NAME:generateContent), and the cached content its body
// refers to.
func (info *Request) inspectPath(rest string, body []byte) {
	i := strings.Index(rest, "/models/")
	if i < 0 {
		return
	}
	m := rest[i+len("/models/"):]
	if j := strings.IndexAny(m, ":/?"); j >= 0 {
		m = m[:j]
	}
	info.Model = ModelLabel(m)
	if !bytes.Contains(body, []byte(`"cachedContent"`)) {
		return
	}
	jsonscan.Members(body, func(key []byte, vs, ve int) {
		if string(key) == "cachedContent" {
			if v, _ := jsonscan.String(body[vs:ve]); v != "" && !info.Pinned {
				info.Session, info.Pinned = refCached+v, true
			}
		}
	})
}

// inspectBody reads the top level of a JSON body: the model and where it
// is, stream and stream_options, and the stored state it refers to; it
// returns its prompt_cache_key, and false for a body that is no JSON
// object.
func (info *Request) inspectBody(body []byte) (promptKey string, ok bool) {
	ok = jsonscan.Members(body, func(key []byte, vs, ve int) {
		switch string(key) {
		case "model":
			info.Model, _ = jsonscan.String(body[vs:ve])
			info.modelStart, info.modelEnd = vs, ve
		case "stream":
			info.stream = string(body[vs:ve]) == "true"
			info.streamStart, info.streamEnd = vs, ve
		case "stream_options":
			info.optsStart, info.optsEnd = vs, ve
		case "previous_response_id":
			if v, _ := jsonscan.String(body[vs:ve]); v != "" {
				info.Session, info.Pinned = refResponse+v, true
			}
		case "conversation":
			if v := conversationID(body[vs:ve]); v != "" && !info.Pinned {
				info.Session, info.Pinned = refConversation+v, true
			}
		case "prompt_cache_key":
			promptKey, _ = jsonscan.String(body[vs:ve])
		}
	})
	return promptKey, ok
}

// conversationID is a conversation's id: a string, or {"id": ...}.
func conversationID(v []byte) string {
	if id, _ := jsonscan.String(v); id != "" {
		return id
	}
	var id string
	jsonscan.Members(v, func(k []byte, s, e int) {
		if string(k) == "id" {
			id, _ = jsonscan.String(v[s:e])
		}
	})
	return id
}

// usageUnsaid reports whether a stream's stream_options leaves
// include_usage unsaid (absent or null: llmkey may ask for it; anything
// else is the client's to decide).
func (info *Request) usageUnsaid(body []byte) bool {
	if info.optsStart < 0 {
		return true
	}
	opts := body[info.optsStart:info.optsEnd]
	switch {
	case string(opts) == "null":
		return true
	case opts[0] != '{':
		return false // not ours to fix
	}
	unsaid := true
	jsonscan.Members(opts, func(key []byte, _, _ int) {
		info.optsHasKeys = true
		if string(key) == "include_usage" {
			unsaid = false // said, either way
		}
	})
	return unsaid
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

// WithModel is body with its model renamed to model (a fallback's name
// for it), every other byte as it was; a body without a model is
// returned as it came.
func WithModel(body []byte, info Request, model string) []byte {
	if info.modelEnd == 0 {
		return body
	}
	out := make([]byte, 0, len(body)+len(model))
	out = append(out, body[:info.modelStart]...)
	q, _ := json.Marshal(model) // a string always marshals
	out = append(out, q...)
	out = append(out, body[info.modelEnd:]...)
	return out
}
