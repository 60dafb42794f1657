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

	"github.com/llmkey/llmkey/cli/fakeprovider"
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
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	json.Unmarshal(body, &req)
	f.mu.Lock()
	f.seen[idx].Stream = req.Stream || strings.HasSuffix(r.URL.Path, ":streamGenerateContent")
	f.mu.Unlock()
	if r.URL.Path == "/v1/chat/completions" && req.Model == "slow" {
		f.slowStream(w)
		return
	}
	_, kind := fakeprovider.Credential(r)
	fakeprovider.ReplyTo(w, r, kind, body)
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

func writeJSONBody(w http.ResponseWriter, s string) { fakeprovider.JSON(w, s) }

// sse writes (event, data) pairs as server-sent events, flushing each.
func sse(w http.ResponseWriter, pairs ...string) { fakeprovider.SSE(w, pairs...) }

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
