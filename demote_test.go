package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// A demoted stream's error event that echoes the key, in lower case or
// JSON-escaped, reaches neither the client nor the log: it is withheld
// as any error answer holding the key is.
func TestDemotedErrorEventThatHoldsTheKeyIsWithheld(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	key := u.canary("sk-ant-api03-")
	escaped := ""
	for _, r := range key {
		escaped += fmt.Sprintf(`\u%04x`, r)
	}
	providers := fmt.Sprintf("[provider.anthropic]\nbase_url = %q\ndemote_to_stream = true\n", fake.URL)
	base, token := u.keysFile("", providers, [3]string{"anthropic/work", key, ""})
	for name, echo := range map[string]string{"lower case": strings.ToLower(key), "escaped": escaped} {
		fake.on(key, func(w http.ResponseWriter, r *http.Request) bool {
			io.Copy(io.Discard, r.Body)
			sse(w, "message_start", `{"type":"message_start","message":{"id":"m","content":[],"usage":{"input_tokens":1,"output_tokens":1}}}`,
				"error", `{"type":"error","error":{"type":"invalid_request_error","message":"this key is not allowed: `+echo+`"}}`)
			return true
		})
		resp, body := post(t, base, token, "/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`, nil)
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		json.Unmarshal([]byte(body), &e)
		if leaked := strings.Contains(strings.ToLower(e.Error.Message), strings.ToLower(key)); leaked || resp.StatusCode != 400 || !strings.Contains(e.Error.Message, "withheld") {
			t.Errorf("%s: status %d, the key in the answer: %v", name, resp.StatusCode, leaked)
		}
	}
	if log := readFile(t, filepath.Join(u.stateDir(), "daemon.log")); strings.Contains(strings.ToLower(log), strings.ToLower(key)) || strings.Contains(log, escaped[:60]) {
		t.Error("the daemon's log holds the key")
	}
}

// flood is a hostile upstream's demoted stream: a message whose events
// (event(i), n of them) never add up to less than the daemon can hold.
// It pauses once the daemon has read a little, until pause is closed,
// and counts the events it got out.
type flood struct {
	event         func(i int) string
	n             int
	paused, pause chan struct{}
	sent          atomic.Int64
}

func (f *flood) serve(w http.ResponseWriter, r *http.Request) bool {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n")
	for i := range f.n {
		if _, err := io.WriteString(w, f.event(i)); err != nil {
			return true
		}
		f.sent.Store(int64(i + 1))
		if i == min(1000, f.n/10) {
			w.(http.Flusher).Flush()
			close(f.paused)
			select {
			case <-f.pause:
			case <-r.Context().Done():
				return true
			}
		}
	}
	fmt.Fprint(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return true
}

// Two demoted streams of some 61 MB that add up to more than the daemon
// holds for an answer: 700,000 empty content blocks, and one text block
// of 61 MB. Each is cut where the daemon's memory for it ends: the
// client gets a clear error in Anthropic's shape, the upstream is no
// longer read, the daemon's peak memory stays within max_buffered_mb
// and 64 MiB of its own, and other clients are served meanwhile.
func TestDemotedStreamIsCutAtItsMemoryBudget(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	hostile, plain := u.canary("sk-ant-api03-"), u.canary("sk-proj-")
	providers := fmt.Sprintf("[provider.anthropic]\nbase_url = %q\ndemote_to_stream = true\n\n[provider.openai]\nbase_url = %q\n", fake.URL, fake.URL+"/v1")
	base, token := u.keysFile("max_buffered_mb = 32", providers, [3]string{"anthropic/hostile", hostile, ""}, [3]string{"openai/plain", plain, ""})
	text := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + strings.Repeat("x", 64<<10) + "\"}}\n\n"
	for _, f := range []*flood{
		{n: 700_000, event: func(i int) string {
			return fmt.Sprintf("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n", i)
		}},
		{n: 1000, event: func(i int) string {
			if i == 0 {
				return "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
			}
			return text
		}},
	} {
		f.paused, f.pause = make(chan struct{}), make(chan struct{})
		fake.on(hostile, f.serve)
		resp, body := u.floodedRequest(f, base, token, func() {
			// While the flood is in the daemon, another client is served.
			if resp, body := post(t, base, token, "/openai/chat/completions", `{"model":"gpt-4o","messages":[]}`, nil); resp.StatusCode != 200 {
				u.errorf("a plain request during the flood: %d %s", resp.StatusCode, body)
			}
		})
		t.Logf("the upstream got %d of %d events out; the client got %d %s", f.sent.Load(), f.n, resp.StatusCode, body)
		var e struct {
			Type  string `json:"type"`
			Error struct {
				Type, Message string
			} `json:"error"`
		}
		json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != 502 || resp.Header.Get("X-Llmkey-Error") != "answer-too-large" || resp.Header.Get("X-Should-Retry") != "false" ||
			e.Type != "error" || !strings.Contains(e.Error.Message, `"stream": true`) {
			u.errorf("the flooded request: %d %s %.300s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), body)
		}
		if f.sent.Load() == int64(f.n) {
			t.Errorf("the daemon read the whole flood")
		}
	}
	rss, sys := procKB(t, u.daemonPID(), "VmHWM")>>10, int(u.memstats().Sys>>20)
	t.Logf("the daemon's peak RSS: %d MiB; the Go runtime took %d MiB from the system", rss, sys)
	// The race detector's shadow memory more than doubles the RSS: what
	// the runtime took for itself stands in for it there.
	if limit := 32 + 64; sys >= limit || (!raceEnabled && rss >= limit) {
		t.Errorf("the daemon's peak RSS was %d MiB (%d MiB taken by the runtime), over max_buffered_mb + 64 MiB", rss, sys)
	}
	if rep := u.usage(); rep.Total.Partial != 2 || rep.Total.Requests != 4 {
		t.Errorf("usage after the floods: %+v", rep.Total)
	}
}

// floodedRequest sends a demoted request to the flood f, runs meanwhile
// while f waits, and returns the answer.
func (u *user) floodedRequest(f *flood, base, token string, meanwhile func()) (*http.Response, string) {
	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/anthropic/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":64000,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("x-api-key", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{resp, string(b), err}
	}()
	select {
	case <-f.paused:
	case <-time.After(30 * time.Second):
		u.fatalf("the flood never started")
	}
	meanwhile()
	close(f.pause)
	select {
	case a := <-got:
		if a.err != nil {
			u.fatalf("the flooded request: %v", a.err)
		}
		u.assertNoCanary(a.body)
		return a.resp, a.body
	case <-time.After(2 * time.Minute):
		u.fatalf("no answer to the flooded request")
	}
	return nil, ""
}

// memstats are the daemon's runtime memory figures.
func (u *user) memstats() (ms struct {
	HeapInuse uint64 `json:"heap_inuse"`
	Sys       uint64 `json:"sys"`
}) {
	ctl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(u.runtimeDir(), "sock"))
	}}}
	resp, err := ctl.Get("http://llmkey/debug/memstats")
	if err != nil {
		u.fatalf("memstats: %v", err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&ms)
	return ms
}
