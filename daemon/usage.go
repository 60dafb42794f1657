package daemon

import (
	"bytes"
	"encoding/json"

	"github.com/llmkey/llmkey/state"
)

// Usage is the tokens one answer used, as the provider reported them.
type Usage struct {
	Input, Output, CacheRead, CacheWrite, Reasoning int
}

// counts are u's tokens as usage counts them.
func (u Usage) counts() state.Counts {
	return state.Counts{Input: int64(u.Input), Output: int64(u.Output), CacheRead: int64(u.CacheRead),
		CacheWrite: int64(u.CacheWrite), Reasoning: int64(u.Reasoning)}
}

// usageMeter reads a copy of a response as it streams to the client and
// keeps only what it needs: for an event stream, the events that carry
// usage, one line at a time; for a JSON body, its last bytes, where every
// provider puts its usage.
type usageMeter struct {
	sse  bool
	line []byte // the SSE line being read
	tail []byte // the last tailSize bytes of a JSON body
	u    Usage
	seen bool
}

const (
	tailSize    = 64 << 10
	maxLineSize = 4 << 20 // longer data lines are skipped, not buffered
)

func newUsageMeter(contentType string) *usageMeter {
	return &usageMeter{sse: bytes.HasPrefix([]byte(contentType), []byte("text/event-stream"))}
}

func (m *usageMeter) Write(p []byte) (int, error) {
	if !m.sse {
		m.tail = append(m.tail, p...)
		if len(m.tail) > 2*tailSize {
			m.tail = append(m.tail[:0], m.tail[len(m.tail)-tailSize:]...)
		}
		return len(p), nil
	}
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(m.line)+len(rest) <= maxLineSize {
				m.line = append(m.line, rest...)
			} else {
				m.line = m.line[:0]
			}
			break
		}
		if len(m.line) > 0 {
			m.line = append(m.line, rest[:i]...)
			m.event(m.line)
			m.line = m.line[:0]
		} else {
			m.event(rest[:i])
		}
		rest = rest[i+1:]
	}
	return len(p), nil
}

// event reads one SSE line; only data lines that mention usage are parsed.
func (m *usageMeter) event(line []byte) {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok || !bytes.Contains(data, []byte("sage")) { // usage, usageMetadata
		return
	}
	// A chat stream that asked for usage says "usage":null in every
	// chunk but the last: not worth a parse each.
	if bytes.Contains(data, []byte(`"usage":null`)) && !bytes.Contains(data, []byte("usageMetadata")) {
		return
	}
	m.parse(bytes.TrimSpace(data))
}

// Usage is what the answer reported; ok is false when it reported none.
func (m *usageMeter) Usage() (Usage, bool) {
	if !m.sse && len(m.tail) > 0 {
		m.parseTail()
	}
	return m.u, m.seen
}

// parseTail finds the last usage object in a JSON body's tail.
func (m *usageMeter) parseTail() {
	for _, key := range [][]byte{[]byte(`"usage"`), []byte(`"usageMetadata"`)} {
		i := bytes.LastIndex(m.tail, key)
		if i < 0 {
			continue
		}
		rest := bytes.TrimLeft(m.tail[i+len(key):], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(rest[1:]))
		var raw json.RawMessage
		if dec.Decode(&raw) != nil {
			continue
		}
		wrapped := append(append([]byte(`{`), key...), ':')
		wrapped = append(append(wrapped, raw...), '}')
		m.parse(wrapped)
		return
	}
}

// wireUsage covers the three formats' usage objects at once:
//
//	OpenAI chat       {"usage": {"prompt_tokens", "completion_tokens",
//	                   "prompt_tokens_details": {"cached_tokens"},
//	                   "completion_tokens_details": {"reasoning_tokens"}}}
//	OpenAI Responses  {"type": "response.completed", "response": {"usage":
//	                   {"input_tokens", "output_tokens", "input_tokens_details",
//	                   "output_tokens_details"}}}
//	Anthropic         {"usage": {...}} or message_start {"message": {"usage"}},
//	                   message_delta {"usage": {"output_tokens"}} (cumulative)
//	Gemini            {"usageMetadata": {"promptTokenCount", "candidatesTokenCount",
//	                   "cachedContentTokenCount", "thoughtsTokenCount"}}
type wireUsage struct {
	PromptTokens        *int `json:"prompt_tokens"`
	CompletionTokens    *int `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`

	InputTokens        *int `json:"input_tokens"`
	OutputTokens       *int `json:"output_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
}

type geminiUsage struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
}

func (m *usageMeter) parse(data []byte) {
	var ev struct {
		Usage    *wireUsage                  `json:"usage"`
		Meta     *geminiUsage                `json:"usageMetadata"`
		Message  *struct{ Usage *wireUsage } `json:"message"`
		Response *struct{ Usage *wireUsage } `json:"response"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	switch {
	case ev.Meta != nil: // Gemini: the last value wins
		g := ev.Meta
		m.u = Usage{Input: g.PromptTokenCount - g.CachedContentTokenCount, CacheRead: g.CachedContentTokenCount,
			Output: g.CandidatesTokenCount + g.ThoughtsTokenCount, Reasoning: g.ThoughtsTokenCount}
		m.seen = true
	case ev.Message != nil && ev.Message.Usage != nil: // Anthropic message_start
		m.merge(ev.Message.Usage)
	case ev.Response != nil && ev.Response.Usage != nil: // OpenAI Responses
		m.merge(ev.Response.Usage)
	case ev.Usage != nil:
		m.merge(ev.Usage)
	}
}

// merge folds one usage object in. OpenAI chat's is whole. The others
// override only what they carry: an Anthropic message_delta has the
// cumulative output count and, sometimes, input counts.
func (m *usageMeter) merge(w *wireUsage) {
	m.seen = true
	if w.PromptTokens != nil || w.CompletionTokens != nil { // OpenAI chat
		cached := w.PromptTokensDetails.CachedTokens
		m.u = Usage{Input: deref(w.PromptTokens) - cached, CacheRead: cached, Output: deref(w.CompletionTokens),
			Reasoning: w.CompletionTokensDetails.ReasoningTokens}
		return
	}
	// OpenAI Responses counts cached input inside input_tokens;
	// Anthropic apart, as cache_read_input_tokens.
	cached := w.InputTokensDetails.CachedTokens
	if w.InputTokens != nil {
		m.u.Input = *w.InputTokens - cached
	}
	if w.OutputTokens != nil {
		m.u.Output = *w.OutputTokens
	}
	if c := cached + w.CacheReadInputTokens; c > 0 {
		m.u.CacheRead = c
	}
	if w.CacheCreationInputTokens > 0 {
		m.u.CacheWrite = w.CacheCreationInputTokens
	}
	if r := w.OutputTokensDetails.ReasoningTokens; r > 0 {
		m.u.Reasoning = r
	}
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
