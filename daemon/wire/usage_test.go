// SPDX-License-Identifier: MIT

package wire

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestUsageMeter(t *testing.T) {
	for _, tc := range []struct {
		name, ct, body string
		want           Usage
	}{
		{"openai chat", "application/json",
			`{"id":"c1","choices":[{"message":{"content":"hello \"usage\": 99"}}],"usage":{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"prompt_tokens_details":{"cached_tokens":10},"completion_tokens_details":{"reasoning_tokens":4}}}`,
			Usage{Input: 20, CacheRead: 10, Output: 7, Reasoning: 4}},
		{"openai chat stream", "text/event-stream",
			"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n",
			Usage{Input: 5, Output: 2}},
		{"openai responses stream", "text/event-stream",
			"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[],\"usage\":{\"input_tokens\":11,\"output_tokens\":6,\"input_tokens_details\":{\"cached_tokens\":1},\"output_tokens_details\":{\"reasoning_tokens\":2}}}}\n\n",
			Usage{Input: 10, CacheRead: 1, Output: 6, Reasoning: 2}},
		{"anthropic message", "application/json",
			`{"id":"msg_1","content":[{"type":"text","text":"hello"}],"usage":{"input_tokens":3,"output_tokens":1,"cache_read_input_tokens":4,"cache_creation_input_tokens":5}}`,
			Usage{Input: 3, Output: 1, CacheRead: 4, CacheWrite: 5}},
		{"anthropic stream", "text/event-stream",
			"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1,\"cache_read_input_tokens\":2}}}\n\n" +
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n",
			Usage{Input: 3, Output: 9, CacheRead: 2}},
		{"gemini stream, last wins", "text/event-stream",
			"data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1}}\n\ndata: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":5}}\n\n",
			Usage{Input: 3, Output: 7, Reasoning: 5}},
		{"gemini json", "application/json; charset=UTF-8",
			`{"candidates":[],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":1,"cachedContentTokenCount":2}}`,
			Usage{Input: 6, CacheRead: 2, Output: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Fed in small pieces, as a stream arrives.
			m := NewMeter(tc.ct)
			for b := []byte(tc.body); len(b) > 0; {
				n := min(7, len(b))
				m.Write(b[:n])
				b = b[n:]
			}
			got, ok := m.Usage()
			if !ok || got != tc.want {
				t.Errorf("got %+v (%v), want %+v", got, ok, tc.want)
			}
		})
	}
	if _, ok := NewMeter("application/json").Usage(); ok {
		t.Error("usage from nothing")
	}
	m := NewMeter("application/json")
	// A long answer: only the tail is kept, and the usage is in it.
	m.Write([]byte(`{"choices":[{"message":{"content":"` + strings.Repeat("x", 300<<10) + `"}}],`))
	m.Write([]byte(`"usage":{"prompt_tokens":1,"completion_tokens":1}}`))
	if u, ok := m.Usage(); !ok || u.Output != 1 || len(m.tail) > 2*tailSize {
		t.Errorf("usage after a long answer: %+v %v (tail %d bytes)", u, ok, len(m.tail))
	}
}

// A provider's absurd counts stay absurd, held at the bounds of int,
// instead of wrapping to plausible ones in the sums each format needs:
// the ledger then counts each as the bound it passed.
func TestUsageSumsDoNotWrap(t *testing.T) {
	const max = "9223372036854775807"
	for _, tc := range []struct{ name, ct, body string }{
		{"gemini", "application/json", `{"usageMetadata":{"promptTokenCount":` + max + `,"cachedContentTokenCount":-7,"candidatesTokenCount":` + max + `,"thoughtsTokenCount":` + max + `}}`},
		{"openai chat", "application/json", `{"usage":{"prompt_tokens":` + max + `,"completion_tokens":` + max + `,"prompt_tokens_details":{"cached_tokens":-7}}}`},
		{"responses", "text/event-stream", "data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":" + max + ",\"output_tokens\":" + max + ",\"input_tokens_details\":{\"cached_tokens\":-7}}}}\n\n"},
		{"anthropic", "text/event-stream", "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":" + max + ",\"cache_read_input_tokens\":" + max + ",\"output_tokens\":1}}}\n\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":" + max + "}}\n\n"},
	} {
		m := NewMeter(tc.ct)
		m.Write([]byte(tc.body))
		u, ok := m.Usage()
		if c := u.Counts(); !ok || c.Input != math.MaxInt64 || c.Output != math.MaxInt64 || c.Tokens() != math.MaxInt64 {
			t.Errorf("%s: %+v (%v)", tc.name, u, ok)
		}
	}
}

// refMeter is the usage meter as it was with encoding/json: the reference
// FuzzUsageEvent holds the scanner to.
type refMeter struct {
	u    Usage
	seen bool
}

type refWireUsage struct {
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

func (m *refMeter) parse(data []byte) {
	var ev struct {
		Usage *refWireUsage `json:"usage"`
		Meta  *struct {
			PromptTokenCount        int `json:"promptTokenCount"`
			CandidatesTokenCount    int `json:"candidatesTokenCount"`
			CachedContentTokenCount int `json:"cachedContentTokenCount"`
			ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
		} `json:"usageMetadata"`
		Message  *struct{ Usage *refWireUsage } `json:"message"`
		Response *struct{ Usage *refWireUsage } `json:"response"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	deref := func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	}
	merge := func(w *refWireUsage) {
		m.seen = true
		if w.PromptTokens != nil || w.CompletionTokens != nil {
			cached := w.PromptTokensDetails.CachedTokens
			m.u = Usage{Input: subSat(deref(w.PromptTokens), cached), CacheRead: cached, Output: deref(w.CompletionTokens),
				Reasoning: w.CompletionTokensDetails.ReasoningTokens}
			return
		}
		cached := w.InputTokensDetails.CachedTokens
		if w.InputTokens != nil {
			m.u.Input = subSat(*w.InputTokens, cached)
		}
		if w.OutputTokens != nil {
			m.u.Output = *w.OutputTokens
		}
		if c := addSat(cached, w.CacheReadInputTokens); c > 0 {
			m.u.CacheRead = c
		}
		if w.CacheCreationInputTokens > 0 {
			m.u.CacheWrite = w.CacheCreationInputTokens
		}
		if r := w.OutputTokensDetails.ReasoningTokens; r > 0 {
			m.u.Reasoning = r
		}
	}
	switch {
	case ev.Meta != nil:
		g := ev.Meta
		m.u = Usage{Input: subSat(g.PromptTokenCount, g.CachedContentTokenCount), CacheRead: g.CachedContentTokenCount,
			Output: addSat(g.CandidatesTokenCount, g.ThoughtsTokenCount), Reasoning: g.ThoughtsTokenCount}
		m.seen = true
	case ev.Message != nil && ev.Message.Usage != nil:
		merge(ev.Message.Usage)
	case ev.Response != nil && ev.Response.Usage != nil:
		merge(ev.Response.Usage)
	case ev.Usage != nil:
		merge(ev.Usage)
	}
}

var usageKeys = []string{"usage", "usageMetadata", "message", "response", "prompt_tokens", "completion_tokens",
	"input_tokens", "output_tokens", "prompt_tokens_details", "completion_tokens_details", "input_tokens_details",
	"output_tokens_details", "cached_tokens", "reasoning_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
	"promptTokenCount", "candidatesTokenCount", "cachedContentTokenCount", "thoughtsTokenCount"}

// comparable is whether encoding/json and the scanner should agree on
// data: valid JSON whose keys match the known ones exactly or not at all
// (encoding/json folds case and unescapes keys; the providers do not).
func comparable(data string) bool {
	if !json.Valid([]byte(data)) || strings.ContainsAny(data, `\`) {
		return false
	}
	for _, c := range data {
		if c >= 0x80 {
			return false
		}
	}
	lower := strings.ToLower(data)
	for _, k := range usageKeys {
		if strings.Count(lower, `"`+strings.ToLower(k)+`"`) != strings.Count(data, `"`+k+`"`) {
			return false
		}
	}
	return true
}

// The scanner reads usage as encoding/json did, event after event: the
// same counts, and usage seen or not alike.
func FuzzUsageEvent(f *testing.F) {
	for _, s := range [][2]string{
		{`{"usage":{"prompt_tokens":30,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":10},"completion_tokens_details":{"reasoning_tokens":4}}}`, `{}`},
		{`{"type":"message_start","message":{"usage":{"input_tokens":3,"output_tokens":1,"cache_read_input_tokens":2}}}`, `{"type":"message_delta","usage":{"output_tokens":9}}`},
		{`{"type":"response.completed","response":{"usage":{"input_tokens":11,"output_tokens":6,"input_tokens_details":{"cached_tokens":1},"output_tokens_details":{"reasoning_tokens":2}}}}`, `{"usage":null}`},
		{`{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}`, `{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":5,"cachedContentTokenCount":1}}`},
		{`{"usage":{"prompt_tokens":1.5}}`, `{"usage":{"input_tokens":-3},"usage":{"output_tokens":4},"message":null}`},
		{`{"usage":{"prompt_tokens":null,"input_tokens":"7"}}`, `{"message":{"usage":{"input_tokens":9223372036854775807}},"message":{}}`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !comparable(a) || !comparable(b) {
			return
		}
		var ref refMeter
		got := &Meter{sse: true}
		for _, ev := range []string{a, b} {
			ref.parse([]byte(ev))
			got.parse([]byte(ev))
			if got.u != ref.u || got.seen != ref.seen {
				t.Fatalf("after %s: scanner %+v %v, encoding/json %+v %v", ev, got.u, got.seen, ref.u, ref.seen)
			}
		}
	})
}
