// SPDX-License-Identifier: MIT

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The Anthropic answer the demotion test's fake gives, whole, as the
// Messages API answers a non-streamed call: extended thinking with its
// signature, a redacted thinking block, text with citations, plain text
// with characters JSON escapes, and a tool call with a nested input.
const demotedMessage = `{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5",
"content":[
 {"type":"thinking","thinking":"The user wants the weather.\nLet me check <the> tool & \"think\" 🌦 first.","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
 {"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
 {"type":"text","text":"According to the docs, the sky is blue.","citations":[{"type":"char_location","cited_text":"The sky is blue.","document_index":0,"document_title":"Sky","start_char_index":0,"end_char_index":16},{"type":"char_location","cited_text":"Grass is green.","document_index":0,"document_title":"Sky","start_char_index":17,"end_char_index":32}]},
 {"type":"text","text":"I'll look it up: <weather> & \"temperature\" — 25°C ✓"},
 {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius","days":[1,2,3],"opts":{"detail":true,"note":null,"ratio":0.25}}}
],
"stop_reason":"tool_use","stop_sequence":null,
"usage":{"input_tokens":2095,"cache_creation_input_tokens":10,"cache_read_input_tokens":1800,"output_tokens":503,"service_tier":"standard"}}`

// anthropicEvents are the events the Messages API streams for msg (a
// message as demotedMessage): message_start with the message less its
// content, stop and final output count; each block's start (empty),
// deltas in small pieces and stop; message_delta; message_stop; pings
// between.
func anthropicEvents(t *testing.T, msg string) []string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		t.Fatal(err)
	}
	var blocks []map[string]json.RawMessage
	json.Unmarshal(m["content"], &blocks)
	var usage map[string]json.RawMessage
	json.Unmarshal(m["usage"], &usage)
	finalOut := usage["output_tokens"]
	usage["output_tokens"] = json.RawMessage("1")
	start := map[string]json.RawMessage{}
	for k, v := range m {
		start[k] = v
	}
	start["content"] = json.RawMessage("[]")
	start["stop_reason"], start["stop_sequence"] = json.RawMessage("null"), json.RawMessage("null")
	start["usage"] = mustJSON(t, usage)
	ev := func(pairs ...any) string {
		o := map[string]any{}
		for i := 0; i < len(pairs); i += 2 {
			o[pairs[i].(string)] = pairs[i+1]
		}
		return string(mustJSON(t, o))
	}
	pieces := func(s string) []string {
		r := []rune(s)
		var out []string
		for i := 0; i < len(r); i += 7 {
			out = append(out, string(r[i:min(i+7, len(r))]))
		}
		return out
	}
	str := func(v json.RawMessage) string {
		var s string
		json.Unmarshal(v, &s)
		return s
	}
	out := []string{"message_start", ev("type", "message_start", "message", start), "ping", `{"type": "ping"}`}
	for i, b := range blocks {
		empty := map[string]json.RawMessage{}
		for k, v := range b {
			empty[k] = v
		}
		var deltas []string
		switch str(b["type"]) {
		case "thinking":
			empty["thinking"], empty["signature"] = json.RawMessage(`""`), json.RawMessage(`""`)
			for _, p := range pieces(str(b["thinking"])) {
				deltas = append(deltas, ev("type", "content_block_delta", "index", i, "delta", map[string]string{"type": "thinking_delta", "thinking": p}))
			}
			deltas = append(deltas, ev("type", "content_block_delta", "index", i, "delta", map[string]string{"type": "signature_delta", "signature": str(b["signature"])}))
		case "text":
			empty["text"] = json.RawMessage(`""`)
			if c, ok := b["citations"]; ok {
				empty["citations"] = json.RawMessage("[]")
				var cites []json.RawMessage
				json.Unmarshal(c, &cites)
				for _, c := range cites {
					deltas = append(deltas, ev("type", "content_block_delta", "index", i, "delta", map[string]any{"type": "citations_delta", "citation": c}))
				}
			}
			for _, p := range pieces(str(b["text"])) {
				deltas = append(deltas, ev("type", "content_block_delta", "index", i, "delta", map[string]string{"type": "text_delta", "text": p}))
			}
		case "tool_use":
			empty["input"] = json.RawMessage("{}")
			for _, p := range pieces(string(b["input"])) {
				deltas = append(deltas, ev("type", "content_block_delta", "index", i, "delta", map[string]string{"type": "input_json_delta", "partial_json": p}))
			}
		}
		out = append(out, "content_block_start", ev("type", "content_block_start", "index", i, "content_block", empty))
		for _, d := range deltas {
			out = append(out, "content_block_delta", d)
		}
		out = append(out, "content_block_stop", ev("type", "content_block_stop", "index", i), "ping", `{"type": "ping"}`)
	}
	out = append(out, "message_delta", ev("type", "message_delta", "delta", map[string]json.RawMessage{"stop_reason": m["stop_reason"], "stop_sequence": m["stop_sequence"]},
		"usage", map[string]json.RawMessage{"output_tokens": finalOut}),
		"message_stop", `{"type":"message_stop"}`)
	return out
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// normalJSON is s decoded and encoded again: keys in order, numbers as
// written, the same escapes.
func normalJSON(t *testing.T, s string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// With demote_to_stream, a non-streaming Anthropic request goes upstream
// as a stream, and the client gets exactly the JSON the upstream gives
// for the same answer non-streamed; an error event becomes that error
// with its status, and a stream that breaks off a clear 502.
func TestDemotedRequestAnswersTheSameJSON(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	key := u.canary("sk-ant-api03-")
	events := anthropicEvents(t, demotedMessage)
	var sawStream []bool
	fake.on(key, func(w http.ResponseWriter, r *http.Request) bool {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		json.Unmarshal(body, &req)
		sawStream = append(sawStream, req.Stream)
		switch {
		case req.Model == "overloaded" && req.Stream:
			sse(w, events[0], events[1], "error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
		case req.Model == "broken" && req.Stream:
			sse(w, events[:8]...)
			panic(http.ErrAbortHandler)
		case req.Stream:
			sse(w, events...)
		default:
			writeJSONBody(w, demotedMessage)
		}
		return true
	})
	providers := fmt.Sprintf("[provider.anthropic]\nbase_url = %q\ndemote_to_stream = true\n", fake.URL)
	base, token := u.keysFile("", providers, [3]string{"anthropic/work", key, ""})

	req := `{"model":"claude-sonnet-4-5","max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":2048},"messages":[{"role":"user","content":"weather?"}]}`
	// What the upstream answers to the same request, not streamed.
	direct, _ := http.NewRequest("POST", fake.URL+"/v1/messages", strings.NewReader(req))
	direct.Header.Set("x-api-key", key)
	dresp, err := http.DefaultClient.Do(direct)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(dresp.Body)
	dresp.Body.Close()

	resp, got := post(t, base, token, "/anthropic/v1/messages", req, map[string]string{"anthropic-version": "2023-06-01", "Accept-Encoding": "gzip"})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		u.fatalf("demoted: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	if n, w := normalJSON(t, got), normalJSON(t, string(want)); n != w {
		u.fatalf("the demoted answer differs from the non-streamed one:\n got %s\nwant %s", n, w)
	}
	if len(sawStream) != 2 || sawStream[0] || !sawStream[1] {
		u.errorf("the upstream saw stream = %v (direct, then through llmkey)", sawStream)
	}
	// Its usage is counted as the stream reported it.
	rep := u.usage()
	if len(rep.Rows) != 1 || rep.Rows[0].Out != 503 || rep.Rows[0].CacheRead != 1800 || rep.Rows[0].Successes != 1 {
		u.errorf("usage of the demoted request: %+v", rep.Rows)
	}
	// A streaming request is left as it is.
	resp, got = post(t, base, token, "/anthropic/v1/messages", strings.Replace(req, `"max_tokens"`, `"stream":true,"max_tokens"`, 1), nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.Contains(got, "message_stop") {
		u.errorf("a streaming request: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// An error event: the answer a non-streamed call would have had.
	resp, got = post(t, base, token, "/anthropic/v1/messages", strings.Replace(req, "claude-sonnet-4-5", "overloaded", 1), nil)
	if resp.StatusCode != 529 || normalJSON(t, got) != normalJSON(t, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`) {
		u.errorf("an error event: %d %s", resp.StatusCode, got)
	}
	// The overload opened the provider's circuit, as a 529 status would.
	if ps := u.keyStatus("anthropic", "work"); ps == nil {
		u.errorf("no status")
	}
	st, _ := u.status()
	if c := st["providers"].(map[string]any)["anthropic"].(map[string]any)["circuit"]; !strings.HasPrefix(fmt.Sprint(c), "open") {
		u.errorf("after an overloaded_error event the circuit is %v", c)
	}
	rep = u.usage()
	failures := int64(0)
	for _, r := range rep.Rows {
		failures += r.Failures["overloaded"]
	}
	if failures != 1 {
		u.errorf("the overloaded_error event is not counted as a failure: %+v", rep.Rows)
	}
	u.llmkey("reset", "anthropic/work")
	time.Sleep(1100 * time.Millisecond) // the circuit's first wait
	// A stream that breaks off.
	resp, got = post(t, base, token, "/anthropic/v1/messages", strings.Replace(req, "claude-sonnet-4-5", "broken", 1), nil)
	if resp.StatusCode != 502 || resp.Header.Get("X-Llmkey-Error") != "upstream-incomplete" || !bytes.Contains([]byte(got), []byte("send it again")) {
		u.errorf("a broken stream: %d %s %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), got)
	}
	u.assertNoCanary(got)
}
