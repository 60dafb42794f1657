package daemon

import (
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
			m := newUsageMeter(tc.ct)
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
	if _, ok := newUsageMeter("application/json").Usage(); ok {
		t.Error("usage from nothing")
	}
	m := newUsageMeter("application/json")
	// A long answer: only the tail is kept, and the usage is in it.
	m.Write([]byte(`{"choices":[{"message":{"content":"` + strings.Repeat("x", 300<<10) + `"}}],`))
	m.Write([]byte(`"usage":{"prompt_tokens":1,"completion_tokens":1}}`))
	if u, ok := m.Usage(); !ok || u.Output != 1 || len(m.tail) > 2*tailSize {
		t.Errorf("usage after a long answer: %+v %v (tail %d bytes)", u, ok, len(m.tail))
	}
}
