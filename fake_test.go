// SPDX-License-Identifier: MIT

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeProvider stands in for OpenAI, Anthropic and Gemini on loopback. It
// answers each wire format the way the real APIs do (JSON or SSE) and
// records which credential every request carried, in which header.
type fakeProvider struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
	// scripts answer instead of the normal handler for one credential;
	// a script returns false to let the normal handler answer.
	scripts  map[string]func(w http.ResponseWriter, r *http.Request) bool
	inFlight map[string]int
	peak     map[string]int // most requests in flight at once, per credential
	// socketReplies answer every response.create on a WebSocket opened
	// with a credential, instead of the response's events.
	socketReplies map[string][]string
}

// onSocket makes every response.create on a socket opened with
// credential cred answered with msgs.
func (f *fakeProvider) onSocket(cred string, msgs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.socketReplies[cred] = msgs
}

// on makes requests with credential cred answer as fn says.
func (f *fakeProvider) on(cred string, fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[cred] = fn
}

// count is how many requests carried credential cred.
func (f *fakeProvider) count(cred string) int {
	n := 0
	for _, s := range f.requests() {
		if s.credential() == cred {
			n++
		}
	}
	return n
}

func (f *fakeProvider) peakInFlight(cred string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak[cred]
}

type seenRequest struct {
	Path    string
	Auth    string // Authorization
	APIKey  string // x-api-key
	GoogKey string // x-goog-api-key
	Query   string
	Stream  bool   // the body asked for a stream
	Org     string // OpenAI-Organization and OpenAI-Project, as sent
	Session string // X-Claude-Code-Session-Id
}

// credential is the key a request carried, whichever header it used.
func (s seenRequest) credential() string {
	switch {
	case s.Auth != "":
		return strings.TrimPrefix(s.Auth, "Bearer ")
	case s.APIKey != "":
		return s.APIKey
	}
	return s.GoogKey
}

func newFakeProvider(t testing.TB) *fakeProvider {
	f := &fakeProvider{scripts: map[string]func(http.ResponseWriter, *http.Request) bool{}, inFlight: map[string]int{}, peak: map[string]int{},
		socketReplies: map[string][]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeProvider) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// saw says whether the fake received a request that match accepts.
func (f *fakeProvider) saw(match func(seenRequest) bool) bool {
	return slices.ContainsFunc(f.requests(), match)
}

func (f *fakeProvider) serve(w http.ResponseWriter, r *http.Request) {
	seen := seenRequest{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Org: strings.TrimSpace(r.Header.Get("OpenAI-Organization") + " " + r.Header.Get("OpenAI-Project")),
		APIKey: r.Header.Get("X-Api-Key"), GoogKey: r.Header.Get("X-Goog-Api-Key"), Query: r.URL.RawQuery,
		Session: r.Header.Get("X-Claude-Code-Session-Id")}
	cred := seen.credential()
	f.mu.Lock()
	f.seen = append(f.seen, seen)
	idx := len(f.seen) - 1
	f.inFlight[cred]++
	f.peak[cred] = max(f.peak[cred], f.inFlight[cred])
	script := f.scripts[cred]
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[cred]--
		f.mu.Unlock()
	}()
	if script != nil && script(w, r) {
		return
	}
	if websocket.IsWebSocketUpgrade(r) {
		f.serveResponsesSocket(w, r, cred)
		return
	}

	body, _ := io.ReadAll(r.Body)
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	json.Unmarshal(body, &req)
	f.mu.Lock()
	f.seen[idx].Stream = req.Stream || strings.HasSuffix(r.URL.Path, ":streamGenerateContent")
	f.mu.Unlock()
	switch {
	case r.URL.Path == "/v1/chat/completions" && req.Model == "slow":
		f.slowStream(w)
	case r.URL.Path == "/v1/chat/completions" && req.Stream:
		// As OpenAI: usage comes in a last chunk only when asked for.
		events := []string{"", `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"hel"},"finish_reason":null}]` + chunkUsage(req.StreamOptions.IncludeUsage) + `}`,
			"", `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]` + chunkUsage(req.StreamOptions.IncludeUsage) + `}`}
		if req.StreamOptions.IncludeUsage {
			events = append(events, "", `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":`+fakeUsage.chatStream+`}`)
		}
		sse(w, append(events, "", `[DONE]`)...)
	case r.URL.Path == "/v1/chat/completions":
		writeJSONBody(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":`+fakeUsage.chat+`}`)
	case r.URL.Path == "/v1/responses":
		resp := `{"id":"resp_1","object":"response","created_at":1,"status":"%s","model":"gpt-4o","output":%s,"parallel_tool_calls":true,"tool_choice":"auto","tools":[]%s}`
		msg := `[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hello","annotations":[]}]}]`
		usage := `,"usage":` + fakeUsage.responses
		if !req.Stream {
			writeJSONBody(w, fmt.Sprintf(resp, "completed", msg, usage))
			return
		}
		// Every event a streamed response has, as the API sends them.
		item := `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hello","annotations":[]}]}`
		sse(w, "response.created", `{"type":"response.created","sequence_number":0,"response":`+fmt.Sprintf(resp, "in_progress", "[]", "")+`}`,
			"response.in_progress", `{"type":"response.in_progress","sequence_number":1,"response":`+fmt.Sprintf(resp, "in_progress", "[]", "")+`}`,
			"response.output_item.added", `{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]}}`,
			"response.content_part.added", `{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}`,
			"response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"hel"}`,
			"response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"lo"}`,
			"response.output_text.done", `{"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"hello"}`,
			"response.content_part.done", `{"type":"response.content_part.done","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"hello","annotations":[]}}`,
			"response.output_item.done", `{"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":`+item+`}`,
			"response.completed", `{"type":"response.completed","sequence_number":9,"response":`+fmt.Sprintf(resp, "completed", msg, usage)+`}`)
	case r.URL.Path == "/v1/messages" && req.Stream:
		sse(w, "message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":23,"cache_read_input_tokens":3,"cache_creation_input_tokens":1,"output_tokens":1}}}`,
			"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hel"}}`,
			"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}`,
			"content_block_stop", `{"type":"content_block_stop","index":0}`,
			"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}`,
			"message_stop", `{"type":"message_stop"}`)
	case r.URL.Path == "/v1/messages":
		writeJSONBody(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":19,"output_tokens":8,"cache_read_input_tokens":5,"cache_creation_input_tokens":2}}`)
	case strings.HasSuffix(r.URL.Path, ":streamGenerateContent"):
		// Gemini repeats usageMetadata; the last one counts.
		sse(w, "", `{"candidates":[{"content":{"parts":[{"text":"hel"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":31,"candidatesTokenCount":1,"totalTokenCount":32},"modelVersion":"gemini-x"}`,
			"", `{"candidates":[{"content":{"parts":[{"text":"lo"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":31,"candidatesTokenCount":6,"totalTokenCount":37},"modelVersion":"gemini-x"}`)
	case strings.HasSuffix(r.URL.Path, ":generateContent"):
		writeJSONBody(w, `{"candidates":[{"content":{"parts":[{"text":"hello"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":29,"cachedContentTokenCount":9,"candidatesTokenCount":10,"thoughtsTokenCount":4,"totalTokenCount":43},"modelVersion":"gemini-x"}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":"fake provider: no route %s"}}`, r.URL.Path)
	}
}

// fakeUsage is what the fake reports, per API. The tokens each request of
// TestSDKHelper used, as llmkey counts them, are in sdkUsage.
var fakeUsage = struct{ chat, chatStream, responses string }{
	chat:       `{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}`,
	chatStream: `{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18}`,
	responses:  `{"input_tokens":17,"input_tokens_details":{"cached_tokens":6},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":26}`,
}

func chunkUsage(asked bool) string {
	if asked {
		return `,"usage":null`
	}
	return ""
}

// slowStream sends five events one second apart: a 5-second stream.
func (f *fakeProvider) slowStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	for i := range 5 {
		fmt.Fprintf(w, "data: {\"n\":%d}\n\n", i)
		w.(http.Flusher).Flush()
		time.Sleep(time.Second)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func writeJSONBody(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, s)
}

// sse writes (event, data) pairs as server-sent events, flushing each.
func sse(w http.ResponseWriter, pairs ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] != "" {
			fmt.Fprintf(w, "event: %s\n", pairs[i])
		}
		fmt.Fprintf(w, "data: %s\n\n", pairs[i+1])
		w.(http.Flusher).Flush()
	}
}

// serveResponsesSocket is the Responses API over WebSocket, as Codex and
// the openai SDK's ResponsesWS use it, at /v1/responses only: each
// response.create is answered with the events of a streamed response,
// "hello from fake" and its usage (input 30, of which 10 cached; output 5),
// or with what onSocket says for the credential cred.
func (f *fakeProvider) serveResponsesSocket(w http.ResponseWriter, r *http.Request, cred string) {
	if r.URL.Path != "/v1/responses" {
		http.Error(w, `{"error":{"message":"no WebSocket here"}}`, http.StatusNotFound)
		return
	}
	up := websocket.Upgrader{EnableCompression: true}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for n := 1; ; n++ {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		var ev struct{ Type, Model string }
		if json.Unmarshal(msg, &ev) != nil || ev.Type != "response.create" {
			continue
		}
		f.mu.Lock()
		replies := f.socketReplies[cred]
		f.mu.Unlock()
		if replies != nil {
			for _, m := range replies {
				c.WriteMessage(websocket.TextMessage, []byte(m))
			}
			continue
		}
		id := fmt.Sprintf("resp_%d", n)
		item := `{"id":"msg_` + id + `","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hello from fake","annotations":[]}]}`
		for _, e := range []string{
			`{"type":"response.created","sequence_number":0,"response":{"id":"` + id + `","object":"response","created_at":1,"status":"in_progress","model":"` + ev.Model + `","output":[]}}`,
			`{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_` + id + `","type":"message","status":"in_progress","role":"assistant","content":[]}}`,
			`{"type":"response.content_part.added","sequence_number":2,"item_id":"msg_` + id + `","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}`,
			`{"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_` + id + `","output_index":0,"content_index":0,"delta":"hello from fake"}`,
			`{"type":"response.output_text.done","sequence_number":4,"item_id":"msg_` + id + `","output_index":0,"content_index":0,"text":"hello from fake"}`,
			`{"type":"response.output_item.done","sequence_number":5,"output_index":0,"item":` + item + `}`,
			`{"type":"response.completed","sequence_number":6,"response":{"id":"` + id + `","object":"response","created_at":1,"status":"completed","model":"` + ev.Model + `","output":[` + item + `],"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":35}}}`,
		} {
			if c.WriteMessage(websocket.TextMessage, []byte(e)) != nil {
				return
			}
		}
	}
}
