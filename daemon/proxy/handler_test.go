// SPDX-License-Identifier: MIT

package proxy

import (
	"bufio"
	"context"
	"fmt"
	"github.com/gorilla/websocket"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

const testSecret = "sk-proj-SECRETaaaaaaaaaaaaaaaaaaaaaaaaa"

// testProxy is the proxy handler in-process in front of an upstream.
type testProxy struct {
	*Handler
	url   string
	snap  atomic.Pointer[Snapshot]
	pools map[string]*rotate.Pool
	usage *testUsage
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// testUsage counts what the handler records.
type testUsage struct {
	mu   sync.Mutex
	rows map[state.UsageKey]state.Counts
}

func (u *testUsage) Add(now time.Time, k state.UsageKey, c state.Counts) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k.Day = state.Day(now)
	sum := u.rows[k]
	sum.Add(c)
	u.rows[k] = sum
}

type noEvents struct{}

func (noEvents) Retried(string)                          {}
func (noEvents) Fallback(string, string, FallbackResult) {}
func (noEvents) SetAside(string, string, rotate.Class)   {}
func (noEvents) Denied(string, rotate.DenialCode)        {}

// publish makes cfg the configuration new requests take.
func (p *testProxy) publish(cfg *state.Config) {
	p.snap.Store(Build(cfg, nil, func(name string) *rotate.Pool {
		if p.pools[name] == nil {
			p.pools[name] = rotate.NewPool(name, systemClock{})
		}
		return p.pools[name]
	}, nil))
}

// newTestProxy runs the proxy handler in-process in front of upstream,
// with short timeouts.
func newTestProxy(t testing.TB, upstream http.Handler, daemonTOML ...string) (*testProxy, string) {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	cfg, err := state.Parse("k.toml", []byte(fmt.Sprintf(`
[daemon]
`+strings.Join(daemonTOML, "\n")+`

[provider.openai]
base_url = "%s/v1"
response_header_timeout = "300ms"
stream_idle_timeout = "300ms"

[[key]]
provider = "openai"
name = "a"
secret = %q
`, up.URL, testSecret)))
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{pools: map[string]*rotate.Pool{}, usage: &testUsage{rows: map[state.UsageKey]state.Counts{}}}
	p.Handler = &Handler{Token: "llmk-local-test", Clock: systemClock{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Transport: NewTransport(), Usage: p.usage, Events: noEvents{}}
	p.Handler.Snapshot = p.snap.Load
	p.publish(cfg)
	srv := httptest.NewServer(p.Handler)
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p, srv.URL
}

func post(t *testing.T, ctx context.Context, url string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/openai/chat/completions", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer llmk-local-test")
	return http.DefaultClient.Do(req)
}

// Each event reaches the client before the upstream sends the next one:
// nothing is batched.
func TestStreamDeliversEachEventAtOnce(t *testing.T) {
	next := make(chan struct{})
	_, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(5 * time.Second):
				return
			}
		}
	}))
	resp, err := post(t, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := rd.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v (held back by the proxy?)", i, line, err)
		}
		rd.ReadString('\n')
		next <- struct{}{}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
}

func TestUpstreamHeaderTimeout(t *testing.T) {
	_, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	start := time.Now()
	resp, err := post(t, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Llmkey-Error") != string(wire.UpstreamTimeout) {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"))
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v", el)
	}
}

// A stream that goes silent is cut, and the client sees a broken body,
// not a complete one.
func TestIdleStreamIsCutVisibly(t *testing.T) {
	_, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	resp, err := post(t, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("the cut stream looked complete to the client: %q", body)
	}
	if string(body) != "data: first\n\n" {
		t.Fatalf("body before the cut: %q", body)
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	cancelled := make(chan struct{})
	_, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: x\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(cancelled)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := post(t, ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(resp.Body).ReadString('\n')
	cancel()
	resp.Body.Close()
	select {
	case <-cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the upstream request went on after the client left")
	}
}

func TestUpstreamErrorsPassThroughRedacted(t *testing.T) {
	_, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req_1")
		w.WriteHeader(401)
		fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s","code":"invalid_api_key"}}`, r.Header.Get("Authorization")[7:])
	}))
	resp, err := post(t, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"error":{"message":"Incorrect API key provided: ` + state.Mask(testSecret) + `","code":"invalid_api_key"}}`
	if resp.StatusCode != 401 || string(body) != want || resp.Header.Get("X-Request-Id") != "req_1" || resp.Header.Get("X-Llmkey-Error") != "" {
		t.Fatalf("got %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

func TestUnreachableUpstream(t *testing.T) {
	d, url := newTestProxy(t, http.NotFoundHandler())
	snap := d.snap.Load()
	snap.Providers["openai"].BaseURL = "http://127.0.0.1:1/v1"
	resp, err := post(t, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || resp.Header.Get("X-Llmkey-Error") != string(wire.UpstreamUnreachable) ||
		!strings.Contains(string(body), "could not reach openai at 127.0.0.1:1: ") || !strings.Contains(string(body), "connection refused") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

func TestRouting(t *testing.T) {
	for in, want := range map[string][2]string{
		"/openai/chat/completions":        {"openai", "/chat/completions"},
		"/openai":                         {"openai", ""},
		"/openai/":                        {"openai", "/"},
		"/gemini/v1beta/models/g%3Ax:gen": {"gemini", "/v1beta/models/g%3Ax:gen"},
	} {
		if n, r := splitRoute(in); n != want[0] || r != want[1] {
			t.Errorf("splitRoute(%q) = %q %q", in, n, r)
		}
	}
	for host, want := range map[string]bool{"127.0.0.1:5565": true, "localhost:1": true, "[::1]:2": true, "LOCALHOST": true,
		"127.9.9.9": true, "evil.example": false, "192.168.1.1:5565": false, "localhost.evil.example:1": false} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v", host, got)
		}
	}
	h := http.Header{"Connection": {"keep-alive, X-Private"}, "X-Private": {"1"}, "Keep-Alive": {"5"}, "Te": {"trailers"}, "X-Keep": {"1"}}
	removeHopHeaders(h)
	if len(h) != 1 || h.Get("X-Keep") != "1" {
		t.Errorf("after removeHopHeaders: %v", h)
	}
}

// A body over max_body_mb gets 413 with a message that says what to do,
// and never reaches the provider.
func TestBodyTooLarge(t *testing.T) {
	reached := false
	_, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }), "max_body_mb = 1")
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(strings.Repeat("x", 1<<20+1))
		if chunked {
			body = io.MultiReader(body) // no length known in advance
		}
		req, _ := http.NewRequest("POST", url+"/openai/chat/completions", body)
		req.Header.Set("Authorization", "Bearer llmk-local-test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || resp.Header.Get("X-Llmkey-Error") != string(wire.BodyTooLarge) || !strings.Contains(string(b), "max_body_mb") {
			t.Errorf("chunked=%v: %d %s", chunked, resp.StatusCode, b)
		}
	}
	if reached {
		t.Error("an oversized body reached the provider")
	}
}

// Over max_in_flight, a request is refused at once with 429 overloaded.
func TestAdmissionCap(t *testing.T) {
	release := make(chan struct{})
	d, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	}), "max_in_flight = 1")
	defer close(release)
	go post(t, context.Background(), url)
	for d.InFlight() < 1 {
		time.Sleep(time.Millisecond)
	}
	resp, err := post(t, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("X-Llmkey-Error") != string(wire.Overloaded) || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("got %d %q %q", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), resp.Header.Get("Retry-After"))
	}
}

// A request waiting for a busy key gives up after max_wait with a 429,
// rather than spinning until the retry deadline.
func TestWaitForBusyKeyEndsAtMaxWait(t *testing.T) {
	release := make(chan struct{})
	d, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-release
	}), `max_wait = "300ms"`)
	defer close(release)
	cfg := *d.snap.Load().Config
	cfg.Keys = append([]state.Key(nil), cfg.Keys...)
	cfg.Keys[0].MaxConcurrent = 1
	pc := cfg.Providers["openai"]
	pc.ResponseHeaderTimeout = state.Duration(5 * time.Second)
	cfg.Providers = map[string]state.ProviderConfig{"openai": pc}
	d.publish(&cfg)

	go post(t, context.Background(), url)
	for d.InFlight() < 1 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	resp, err := post(t, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if el := time.Since(start); resp.StatusCode != 429 || resp.Header.Get("X-Llmkey-Error") != string(rotate.AllKeysCooling) || el < 250*time.Millisecond || el > 2*time.Second {
		t.Errorf("got %d %q after %v", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), el)
	}
}

// A request served is logged only with [daemon] log_requests; a failed
// attempt always is.
func TestRequestLogLines(t *testing.T) {
	for _, on := range []bool{false, true} {
		opts := []string{`max_wait = "0s"`}
		if on {
			opts = append(opts, "log_requests = true")
		}
		fail := false
		d, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if fail {
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			io.WriteString(w, `{"usage":{"prompt_tokens":3,"completion_tokens":2}}`)
		}), opts...)
		var out syncBuffer
		d.Log = slog.New(slog.NewTextHandler(&out, nil))
		for _, f := range []bool{false, true} {
			fail = f
			resp, err := post(t, context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		log := out.String()
		if !strings.Contains(log, `msg="attempt failed"`) || !strings.Contains(log, "status=429") {
			t.Errorf("log_requests %v: the failed attempt is not logged:\n%s", on, log)
		}
		served := strings.Contains(log, "msg=request ") && strings.Contains(log, "output_tokens=2")
		if served != on {
			t.Errorf("log_requests %v: request line logged %v:\n%s", on, served, log)
		}
		if strings.Contains(log, testSecret) {
			t.Errorf("the log holds the secret:\n%s", log)
		}
	}
}

// A request answered with the last attempt's error after its key was set
// aside logs how long the whole request took, not the time since the
// denial.
func TestFailedRequestLogsItsWholeDuration(t *testing.T) {
	d, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(150 * time.Millisecond)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"message":"bad key","code":"invalid_api_key"}}`)
	}), `max_wait = "0s"`)
	var out syncBuffer
	d.Log = slog.New(slog.NewTextHandler(&out, nil))
	resp, err := post(t, context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	line := ""
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, `msg="upstream error"`) {
			line = l
		}
	}
	var ms int
	if i := strings.Index(line, " ms="); i < 0 {
		t.Fatalf("no upstream error line with ms:\n%s", out.String())
	} else {
		fmt.Sscanf(line[i+4:], "%d", &ms)
	}
	if ms < 150 {
		t.Errorf("logged ms=%d for a request that took at least 150 ms: %s", ms, line)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The client's request is left as it came, whatever goes upstream
// instead: its token swapped for a key, its hop-by-hop headers dropped,
// a demoted body sent as a stream, a WebSocket's handshake redone, a
// fallback's model renamed (net/http: handlers should not modify the
// provided Request).
func TestClientRequestIsLeftAlone(t *testing.T) {
	var mu sync.Mutex
	var upstream []string // what the upstream saw: path, key, accept-encoding, body
	sawn := func(r *http.Request, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		upstream = append(upstream, r.URL.Path+" "+r.Header.Get("Authorization")+r.Header.Get("X-Api-Key")+" ae="+r.Header.Get("Accept-Encoding")+" "+string(body))
	}
	d, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			sawn(r, nil)
			c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
			if err == nil {
				c.WriteMessage(websocket.TextMessage, []byte(`{"type":"response.created","response":{"id":"resp_1"}}`))
				c.Close()
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		sawn(r, body)
		switch {
		case r.Header.Get("Authorization") == "Bearer "+testSecret && strings.Contains(string(body), "gpt-fall"):
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"slow down","type":"requests"}}`)
		case strings.HasSuffix(r.URL.Path, "/messages"):
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"+
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
		default:
			io.WriteString(w, `{}`)
		}
	}))
	cfg := *d.snap.Load().Config
	base := strings.TrimSuffix(d.snap.Load().Providers["openai"].BaseURL, "/v1")
	cfg.Keys = append(cfg.Keys, state.Key{Provider: "anthropic", Name: "c", Secret: "sk-ant-cccccccccccccccccccccccc"},
		state.Key{Provider: "openrouter", Name: "b", Secret: "sk-or-bbbbbbbbbbbbbbbbbbbbbbbb"})
	wait := state.Duration(time.Millisecond)
	cfg.Providers = map[string]state.ProviderConfig{
		"openai":     {BaseURL: base + "/v1", Fallback: []string{"openrouter"}, FallbackModels: map[string]string{"gpt-fall": "openai/gpt-fall"}, PrimaryWait: &wait},
		"openrouter": {BaseURL: base + "/v1"},
		"anthropic":  {BaseURL: base, DemoteToStream: true},
	}
	d.publish(&cfg)
	var changed []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before, url := fmt.Sprint(r.Header), r.URL.String()
		d.ServeHTTP(w, r)
		if after := fmt.Sprint(r.Header); after != before || r.URL.String() != url {
			mu.Lock()
			changed = append(changed, fmt.Sprintf("%s %s:\n%s\nwas:\n%s", r.Method, url, after, before))
			mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)

	send := func(path, body string, hdr http.Header) int {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	plain := http.Header{"Authorization": {"Bearer llmk-local-test"}, "Connection": {"keep-alive, X-Hop"}, "X-Hop": {"1"}}
	if code := send("/openai/chat/completions", `{"model":"m"}`, plain); code != 200 {
		t.Errorf("a plain request: %d", code)
	}
	demoted := http.Header{"X-Api-Key": {"llmk-local-test"}, "Accept-Encoding": {"br"}, "Anthropic-Version": {"2023-06-01"}}
	if code := send("/anthropic/v1/messages", `{"model":"claude","max_tokens":5,"messages":[]}`, demoted); code != 200 {
		t.Errorf("a demoted request: %d", code)
	}
	if code := send("/openai/chat/completions", `{"model":"gpt-fall"}`, http.Header{"Authorization": {"Bearer llmk-local-test"}}); code != 200 {
		t.Errorf("a request that falls over: %d", code)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(strings.Replace(srv.URL, "http", "ws", 1)+"/openai/responses?key=llmk-local-test",
		http.Header{"Authorization": {"Bearer llmk-local-test"}, "X-Hop": {"1"}})
	if err != nil {
		t.Fatalf("a WebSocket: %v %v", err, resp)
	}
	ws.ReadMessage()
	ws.Close()

	deadline := time.Now().Add(5 * time.Second)
	for d.InFlight()+d.inSockets.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range changed {
		t.Errorf("the client's request changed: %s", c)
	}
	want := []string{
		"/v1/chat/completions Bearer " + testSecret + " ae=gzip {\"model\":\"m\"}",
		"/v1/messages sk-ant-cccccccccccccccccccccccc ae= {\"stream\":true,\"model\":\"claude\",\"max_tokens\":5,\"messages\":[]}",
		"/v1/chat/completions Bearer " + testSecret + " ae=gzip {\"model\":\"gpt-fall\"}",
		"/v1/chat/completions Bearer sk-or-bbbbbbbbbbbbbbbbbbbbbbbb ae=gzip {\"model\":\"openai/gpt-fall\"}",
		"/v1/responses Bearer " + testSecret + " ae= ",
	}
	if strings.Join(upstream, "\n") != strings.Join(want, "\n") {
		t.Errorf("the upstream saw:\n%s\nwant:\n%s", strings.Join(upstream, "\n"), strings.Join(want, "\n"))
	}
}

// Claude Code's gateway protocol: both Anthropic path conventions reach
// /v1/... (count_tokens and ?beta=true included), anthropic-beta and
// anthropic-version go upstream verbatim, answers (thinking blocks and
// their signatures) come back byte for byte, and HEAD on a provider's
// base URL is answered without going upstream.
func TestAnthropicPathsAndHead(t *testing.T) {
	var paths, betas []string
	var mu sync.Mutex
	thinking := `{"type":"message","content":[{"type":"thinking","thinking":"…","signature":"EqQBCkYIBxgCKkD+/=="}]}`
	d, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.RequestURI())
		betas = append(betas, r.Header.Get("Anthropic-Beta")+"|"+r.Header.Get("Anthropic-Version"))
		mu.Unlock()
		io.WriteString(w, thinking)
	}))
	cfg := *d.snap.Load().Config
	cfg.Keys = append(cfg.Keys, state.Key{Provider: "anthropic", Name: "a", Secret: "sk-ant-aaaaaaaaaaaaaaaaaaaaaaaa"})
	base := strings.TrimSuffix(d.snap.Load().Providers["openai"].BaseURL, "/v1")
	cfg.Providers = map[string]state.ProviderConfig{"openai": {BaseURL: base + "/v1"}, "anthropic": {BaseURL: base}}
	d.publish(&cfg)
	for _, p := range []string{"/anthropic/v1/messages", "/anthropic/messages", "/anthropic/v1/messages/count_tokens?beta=true"} {
		req, _ := http.NewRequest("POST", url+p, strings.NewReader(`{"model":"claude"}`))
		req.Header.Set("X-Api-Key", "llmk-local-test")
		req.Header.Set("Anthropic-Beta", "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != thinking {
			t.Errorf("%s: the answer changed: %s", p, b)
		}
	}
	for _, b := range betas {
		if b != "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14|2023-06-01" {
			t.Errorf("anthropic-beta|anthropic-version upstream: %q", b)
		}
	}
	mu.Lock()
	want := []string{"/v1/messages", "/v1/messages", "/v1/messages/count_tokens?beta=true"}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Errorf("upstream paths %v, want %v", paths, want)
	}
	mu.Unlock()
	for _, p := range []string{"/", "/anthropic", "/anthropic/"} {
		resp, err := http.Head(url + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("HEAD %s: %v %v", p, err, resp)
		}
	}
	if len(paths) != 3 {
		t.Errorf("a HEAD went upstream: %v", paths)
	}
}
