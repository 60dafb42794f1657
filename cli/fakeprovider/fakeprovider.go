// SPDX-License-Identifier: MIT

// Package fakeprovider is a provider's server on loopback that llmkey
// can serve itself: it answers the OpenAI (chat completions, responses,
// models), Anthropic (messages, models) and Gemini (generateContent,
// streamGenerateContent, models) APIs in their own JSON and server-sent
// events, and answers each key as it is told: a reply, the key's own rate
// limit, its organisation's, an invalid key or a spent quota, each with
// the status, headers and error body that provider sends. "llmkey demo"
// runs on it, and the end-to-end tests' fake provider replies with it.
package fakeprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Answer is how the server answers a key.
type Answer int

const (
	Reply       Answer = iota // a short reply ("hello"), with its usage
	RateLimited               // 429: the key's own limit, for its wait
	OrgLimited                // 429: its organisation's (or project's) limit, for its wait
	Invalid                   // the provider does not know the key
	OutOfQuota                // no credit or quota left
)

var answerNames = [...]string{"reply", "rate-limited", "org-limited", "invalid", "out-of-quota"}

func (a Answer) String() string {
	if int(a) < len(answerNames) {
		return answerNames[a]
	}
	return "unknown"
}

// Server is the fake provider. Its routes are the providers' own under
// any prefix, so a base_url of URL+"/v1" (OpenAI-compatible), URL
// (Anthropic, Gemini) or URL+"/anything/v1" all reach it.
type Server struct {
	// URL is its root: http://127.0.0.1:PORT.
	URL string
	srv *http.Server

	mu     sync.Mutex
	keys   map[string]behaviour
	served []Served
	added  chan struct{} // closed and renewed at each Served
}

type behaviour struct {
	answer Answer
	wait   time.Duration
}

// Served is one request the server answered.
type Served struct {
	Key    string // the credential it carried, in whichever header
	Kind   string // "openai", "anthropic" or "gemini"
	Path   string
	Status int
	Answer Answer
	Wait   time.Duration // the wait a rate limit gave
}

// Start serves on a free port of 127.0.0.1 until Close.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake provider: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), keys: map[string]behaviour{}, added: make(chan struct{})}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server and ends the requests it is answering.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// Set makes the server answer key with a; wait is the Retry-After of a
// rate limit. A key never Set gets Reply.
func (s *Server) Set(key string, a Answer, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = behaviour{a, wait}
}

// Served lists the requests answered so far, from the from-th on.
func (s *Server) Served(from int) []Served {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from >= len(s.served) {
		return nil
	}
	return append([]Served(nil), s.served[from:]...)
}

// Next is closed when the next request has been answered.
func (s *Server) Next() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.added
}

// ServeHTTP answers one request as the provider its route and credential
// name would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, kind := Credential(r)
	s.mu.Lock()
	b := s.keys[key]
	s.mu.Unlock()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var status int
	if b.answer == Reply {
		status = ReplyTo(w, r, kind, body)
	} else {
		status = refuse(w, kind, b)
	}
	s.mu.Lock()
	s.served = append(s.served, Served{Key: key, Kind: kind, Path: r.URL.Path, Status: status, Answer: b.answer, Wait: b.wait})
	close(s.added)
	s.added = make(chan struct{})
	s.mu.Unlock()
}

// Credential is the key r carries and the kind of provider its header
// (and route) belongs to: Authorization (OpenAI), x-api-key (Anthropic),
// x-goog-api-key or ?key= (Gemini).
func Credential(r *http.Request) (key, kind string) {
	switch {
	case r.Header.Get("X-Goog-Api-Key") != "":
		return r.Header.Get("X-Goog-Api-Key"), "gemini"
	case r.URL.Query().Get("key") != "":
		return r.URL.Query().Get("key"), "gemini"
	case r.Header.Get("X-Api-Key") != "":
		return r.Header.Get("X-Api-Key"), "anthropic"
	}
	kind = "openai"
	if strings.Contains(r.URL.Path, "/v1beta/") || strings.Contains(r.URL.Path, ":generateContent") {
		kind = "gemini"
	}
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), kind
}

// refuse answers as kind does a key that b says is refused, and returns
// the status.
func refuse(w http.ResponseWriter, kind string, b behaviour) int {
	secs := strconv.Itoa(max(1, int(b.wait.Round(time.Second)/time.Second)))
	e := errorsOf(kind)[b.answer]
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if b.answer == RateLimited || b.answer == OrgLimited {
		h.Set("Retry-After", secs)
		if kind == "openai" {
			h.Set("X-Ratelimit-Remaining-Requests", "0")
			h.Set("X-Ratelimit-Reset-Requests", secs+"s")
		}
	}
	w.WriteHeader(e.status)
	io.WriteString(w, strings.ReplaceAll(e.body, "{SECS}", secs))
	return e.status
}

type providerError struct {
	status int
	body   string
}

// errorsOf are kind's error answers, as that provider sends them.
func errorsOf(kind string) map[Answer]providerError {
	switch kind {
	case "anthropic":
		return map[Answer]providerError{
			RateLimited: {429, `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your rate limit of 5 requests per minute. Please try again in {SECS} seconds."}}`},
			OrgLimited:  {429, `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (demo-org) of 50 requests per minute."}}`},
			Invalid:     {401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`},
			OutOfQuota:  {400, `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}`},
		}
	case "gemini":
		return map[Answer]providerError{
			RateLimited: {429, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`},
			OrgLimited: {429, `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[` +
				`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel"}]},` +
				`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{SECS}s"}]}}`},
			Invalid: {400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[` +
				`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`},
			OutOfQuota: {429, `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[` +
				`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}`},
		}
	}
	return map[Answer]providerError{
		RateLimited: {429, `{"error":{"message":"Rate limit reached for requests. Please try again in {SECS}s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
		OrgLimited:  {429, `{"error":{"message":"Rate limit reached for gpt-4o in organization org-demo on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in {SECS}s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
		Invalid:     {401, `{"error":{"message":"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`},
		OutOfQuota:  {429, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`},
	}
}

// Usage is what a reply reports, per API.
var Usage = struct{ Chat, ChatStream, Responses string }{
	Chat:       `{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}`,
	ChatStream: `{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18}`,
	Responses:  `{"input_tokens":17,"input_tokens_details":{"cached_tokens":6},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":26}`,
}

// ReplyTo answers r, whose body is body, with the reply "hello" in its
// API's format (a stream when the request asks for one), and returns the
// status.
func ReplyTo(w http.ResponseWriter, r *http.Request, kind string, body []byte) int {
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	json.Unmarshal(body, &req)
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/models"):
		models(w, kind)
	case strings.HasSuffix(p, "/chat/completions"):
		chat(w, req.Stream, req.StreamOptions.IncludeUsage)
	case strings.HasSuffix(p, "/responses"):
		responses(w, req.Stream)
	case strings.HasSuffix(p, "/messages"):
		messages(w, req.Stream)
	case strings.HasSuffix(p, ":streamGenerateContent"):
		// Gemini repeats usageMetadata; the last one counts.
		SSE(w, "", `{"candidates":[{"content":{"parts":[{"text":"hel"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":31,"candidatesTokenCount":1,"totalTokenCount":32},"modelVersion":"gemini-x"}`,
			"", `{"candidates":[{"content":{"parts":[{"text":"lo"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":31,"candidatesTokenCount":6,"totalTokenCount":37},"modelVersion":"gemini-x"}`)
	case strings.HasSuffix(p, ":generateContent"):
		JSON(w, `{"candidates":[{"content":{"parts":[{"text":"hello"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":29,"cachedContentTokenCount":9,"candidatesTokenCount":10,"thoughtsTokenCount":4,"totalTokenCount":43},"modelVersion":"gemini-x"}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":"fake provider: no route %s"}}`, p)
		return http.StatusNotFound
	}
	return http.StatusOK
}

func models(w http.ResponseWriter, kind string) {
	switch kind {
	case "anthropic":
		JSON(w, `{"data":[{"type":"model","id":"claude-x","display_name":"Claude X","created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-x","last_id":"claude-x"}`)
	case "gemini":
		JSON(w, `{"models":[{"name":"models/gemini-x","displayName":"Gemini X","supportedGenerationMethods":["generateContent","streamGenerateContent"]}]}`)
	default:
		JSON(w, `{"object":"list","data":[{"id":"gpt-4o","object":"model","created":1,"owned_by":"system"}]}`)
	}
}

func chat(w http.ResponseWriter, stream, includeUsage bool) {
	if !stream {
		JSON(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":`+Usage.Chat+`}`)
		return
	}
	// As OpenAI: usage comes in a last chunk only when asked for.
	events := []string{"", `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"hel"},"finish_reason":null}]` + chunkUsage(includeUsage) + `}`,
		"", `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]` + chunkUsage(includeUsage) + `}`}
	if includeUsage {
		events = append(events, "", `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":`+Usage.ChatStream+`}`)
	}
	SSE(w, append(events, "", `[DONE]`)...)
}

func chunkUsage(asked bool) string {
	if asked {
		return `,"usage":null`
	}
	return ""
}

func responses(w http.ResponseWriter, stream bool) {
	resp := `{"id":"resp_1","object":"response","created_at":1,"status":"%s","model":"gpt-4o","output":%s,"parallel_tool_calls":true,"tool_choice":"auto","tools":[]%s}`
	msg := `[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hello","annotations":[]}]}]`
	usage := `,"usage":` + Usage.Responses
	if !stream {
		JSON(w, fmt.Sprintf(resp, "completed", msg, usage))
		return
	}
	// Every event a streamed response has, as the API sends them.
	item := `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hello","annotations":[]}]}`
	SSE(w, "response.created", `{"type":"response.created","sequence_number":0,"response":`+fmt.Sprintf(resp, "in_progress", "[]", "")+`}`,
		"response.in_progress", `{"type":"response.in_progress","sequence_number":1,"response":`+fmt.Sprintf(resp, "in_progress", "[]", "")+`}`,
		"response.output_item.added", `{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]}}`,
		"response.content_part.added", `{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}`,
		"response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"hel"}`,
		"response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"lo"}`,
		"response.output_text.done", `{"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"hello"}`,
		"response.content_part.done", `{"type":"response.content_part.done","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"hello","annotations":[]}}`,
		"response.output_item.done", `{"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":`+item+`}`,
		"response.completed", `{"type":"response.completed","sequence_number":9,"response":`+fmt.Sprintf(resp, "completed", msg, usage)+`}`)
}

func messages(w http.ResponseWriter, stream bool) {
	if !stream {
		JSON(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":19,"output_tokens":8,"cache_read_input_tokens":5,"cache_creation_input_tokens":2}}`)
		return
	}
	SSE(w, "message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":23,"cache_read_input_tokens":3,"cache_creation_input_tokens":1,"output_tokens":1}}}`,
		"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hel"}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}`,
		"content_block_stop", `{"type":"content_block_stop","index":0}`,
		"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}`,
		"message_stop", `{"type":"message_stop"}`)
}

// JSON writes s as a JSON answer.
func JSON(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, s)
}

// SSE writes (event, data) pairs as server-sent events, flushing each;
// an empty event name writes the data alone.
func SSE(w http.ResponseWriter, pairs ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] != "" {
			fmt.Fprintf(w, "event: %s\n", pairs[i])
		}
		fmt.Fprintf(w, "data: %s\n\n", pairs[i+1])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
}
