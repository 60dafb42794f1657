// SPDX-License-Identifier: MIT

package wire

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/llmkey/llmkey/state"
)

func TestInspectNamesTheConversation(t *testing.T) {
	for _, c := range []struct {
		kind       state.Kind
		rest, body string
		session    string
		pinned     bool
	}{
		{state.KindOpenAI, "/v1/responses", `{"model":"gpt-5","previous_response_id":"resp_9","prompt_cache_key":"k"}`, "response:resp_9", true},
		{state.KindOpenAI, "/v1/responses", `{"model":"gpt-5","conversation":"conv_1"}`, "conversation:conv_1", true},
		{state.KindOpenAI, "/v1/responses", `{"model":"gpt-5","conversation":{"id":"conv_2"}}`, "conversation:conv_2", true},
		{state.KindOpenAI, "/v1/chat/completions", `{"model":"gpt-5","prompt_cache_key":"pk-1","messages":[]}`, "prompt_cache_key:pk-1", false},
		{state.KindOpenAI, "/v1/chat/completions", `{"messages":[],"prompt_cache_key":"pk-2"}`, "prompt_cache_key:pk-2", false},
		{state.KindOpenAI, "/v1/responses/resp_7", ``, "response:resp_7", true},
		{state.KindOpenAI, "/v1/responses/resp_7/input_items", ``, "response:resp_7", true},
		{state.KindOpenAI, "/v1/conversations/conv_3/items", ``, "conversation:conv_3", true},
		{state.KindGemini, "/v1beta/models/gemini-2.5-pro:generateContent", `{"cachedContent":"cachedContents/abc","contents":[]}`, "cached:cachedContents/abc", true},
		{state.KindGemini, "/v1beta/cachedContents/abc", ``, "cached:cachedContents/abc", true},
		{state.KindOpenAI, "/v1/chat/completions", `{"model":"gpt-5","messages":[]}`, "", false},
		{state.KindOpenAI, "/v1/responses", `{"model":"gpt-5","previous_response_id":null}`, "", false},
	} {
		info := Inspect(c.kind, c.rest, []byte(c.body))
		if info.Session != c.session || info.Pinned != c.pinned {
			t.Errorf("%s %s: session %q pinned %v, want %q %v", c.rest, c.body, info.Session, info.Pinned, c.session, c.pinned)
		}
	}
	h := http.Header{}
	h.Set("X-Claude-Code-Session-Id", "abc")
	if s := SessionOf(h); s != "session:abc" {
		t.Errorf("SessionOf: %q", s)
	}
	if Creates(state.KindOpenAI, "POST", "/v1/responses") != "response:" || Creates(state.KindOpenAI, "GET", "/v1/responses") != "" ||
		Creates(state.KindGemini, "POST", "/v1beta/cachedContents") != "cached:" || Creates(state.KindOpenAI, "POST", "/v1/chat/completions") != "" {
		t.Error("Creates")
	}
}

func TestCreatedID(t *testing.T) {
	m := NewMeter("application/json")
	m.KeepID()
	body := `{"id":"resp_42","object":"response","output":[` + string(make([]byte, 0)) + `],"usage":{"input_tokens":1,"output_tokens":2}}`
	m.Write([]byte(body[:10]))
	m.Write([]byte(body[10:]))
	if id := m.CreatedID(); id != "resp_42" {
		t.Errorf("JSON: %q", id)
	}
	m = NewMeter("application/json")
	m.KeepID()
	m.Write([]byte(`{"name":"cachedContents/xyz","model":"models/gemini"}`))
	if id := m.CreatedID(); id != "cachedContents/xyz" {
		t.Errorf("Gemini: %q", id)
	}
	m = NewMeter("text/event-stream")
	m.KeepID()
	m.Write([]byte("event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_s\",\"object\":\"response\"}}\n\n"))
	if id := m.CreatedID(); id != "resp_s" {
		t.Errorf("stream: %q", id)
	}
}

func TestHeadroomAndOrgWide(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("X-Ratelimit-Limit-Requests", "100")
	h.Set("X-Ratelimit-Remaining-Requests", "4")
	h.Set("X-Ratelimit-Reset-Requests", "30s")
	h.Set("X-Ratelimit-Limit-Tokens", "10000")
	h.Set("X-Ratelimit-Remaining-Tokens", "9000")
	h.Set("X-Ratelimit-Reset-Tokens", "1s")
	left, resets := Headroom(h, now)
	if left != 0.04 || resets != 30*time.Second {
		t.Errorf("openai: %v %v", left, resets)
	}
	a := http.Header{}
	a.Set("Anthropic-Ratelimit-Requests-Limit", "50")
	a.Set("Anthropic-Ratelimit-Requests-Remaining", "49")
	a.Set("Anthropic-Ratelimit-Requests-Reset", now.Add(time.Minute).Format(time.RFC3339))
	if left, resets := Headroom(a, now); left != 0.98 || resets != time.Minute {
		t.Errorf("anthropic: %v %v", left, resets)
	}
	if _, resets := Headroom(http.Header{}, now); resets != 0 {
		t.Error("no headers, yet a headroom")
	}
	// Every success is looked at: one that names none of the limits
	// (most providers' answers) costs no allocation.
	plain := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req_1"}}
	if n := testing.AllocsPerRun(100, func() { Headroom(plain, now) }); n != 0 {
		t.Errorf("Headroom of an answer without rate-limit headers: %v allocations", n)
	}
	o := Classify(state.KindOpenAI, 200, h, nil, now)
	if o.Left != 0.04 || o.LeftFor != 30*time.Second {
		t.Errorf("Classify: %+v", o)
	}
	for body, want := range map[string]bool{
		`{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 10.","type":"tokens","code":"rate_limit_exceeded"}}`: true,
		`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your organization’s rate limit of 50,000 input tokens per minute."}}`:                               true,
		`{"error":{"message":"Too many requests for this key","type":"requests"}}`:                                                                                                                   false,
	} {
		if o := Classify(state.KindOpenAI, 429, http.Header{}, []byte(body), now); o.OrgWide != want {
			t.Errorf("%s: org-wide %v", body, o.OrgWide)
		}
	}
}

func TestRewritesKeepEveryOtherByte(t *testing.T) {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"model"}],"stream":false}`)
	info := Inspect(state.KindOpenAI, "/v1/chat/completions", body)
	if got := string(WithModel(body, info, "openai/gpt-4o")); got != `{"model":"openai/gpt-4o","messages":[{"role":"user","content":"model"}],"stream":false}` {
		t.Errorf("WithModel: %s", got)
	}
	for model, want := range map[string]string{
		"gemini-2.5-flash": "/v1beta/models/gemini-2.5-flash:generateContent",
		"../../v1/files":   "/v1beta/models/..%2F..%2Fv1%2Ffiles:generateContent",
		"m?alt=x":          "/v1beta/models/m%3Falt=x:generateContent",
	} {
		if got, b := Rename(state.KindGemini, "/v1beta/models/gemini-2.5-pro:generateContent", []byte(`{"contents":[]}`), model); got != want || string(b) != `{"contents":[]}` {
			t.Errorf("Rename to %q: %s %s", model, got, b)
		}
	}
	for model, want := range map[string]bool{"gemini-2.5-flash": true, "models.v2": true, "..": false, ".": false, "a/b": false, "a?b": false, "a%2e": false, "a:b": false, "a b": false, "": false} {
		if RenameSafe(state.KindGemini, model) != want {
			t.Errorf("RenameSafe(gemini, %q) = %v", model, !want)
		}
	}
	if !RenameSafe(state.KindOpenAI, "openai/gpt-4o") {
		t.Error("a model in a JSON body may hold anything")
	}
	a := []byte(`{"model":"claude-x","max_tokens":10,"messages":[],"stream":false}`)
	ai := Inspect(state.KindAnthropic, "/v1/messages", a)
	if !ai.Demotable(state.KindAnthropic, "POST", "/v1/messages") {
		t.Fatal("not demotable")
	}
	if got := string(WithStream(a, ai)); got != `{"model":"claude-x","max_tokens":10,"messages":[],"stream":true}` {
		t.Errorf("WithStream: %s", got)
	}
	b := []byte(`{"model":"claude-x","messages":[]}`)
	if got := string(WithStream(b, Inspect(state.KindAnthropic, "/v1/messages", b))); !json.Valid([]byte(got)) || got != `{"stream":true,"model":"claude-x","messages":[]}` {
		t.Errorf("WithStream: %s", got)
	}
	s := []byte(`{"model":"claude-x","messages":[],"stream":true}`)
	if Inspect(state.KindAnthropic, "/v1/messages", s).Demotable(state.KindAnthropic, "POST", "/v1/messages") {
		t.Error("a stream is demotable")
	}
}

// An Assembler reports a stream that ended early, or that does not parse,
// and gives an error event its status.
func TestAssemblerEdges(t *testing.T) {
	var a Assembler
	a.Write([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1}}}\n\n"))
	if _, _, err := a.Result(); err == nil {
		t.Error("a stream without message_stop has a result")
	}
	var b Assembler
	b.Write([]byte("data: {\"type\":\"message_start\",\"message\":{\"content\":[]}}\n\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"x\",\"input\":{}}}\n\n" +
		"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\ndata: {\"type\":\"message_stop\"}\n\n"))
	if _, _, err := b.Result(); err == nil {
		t.Error("a tool input that does not parse was assembled")
	}
	var c Assembler
	c.Write([]byte("data: {\"type\":\"message_start\",\"message\":{\"content\":[]}}\r\n\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\r\n\r\n"))
	if status, body, err := c.Result(); err != nil || status != 429 || !json.Valid(body) {
		t.Errorf("an error event: %d %s %v", status, body, err)
	}
	var d Assembler
	d.Write([]byte("data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{}}\n\n"))
	if _, _, err := d.Result(); err == nil {
		t.Error("a delta for no block was taken")
	}
}
