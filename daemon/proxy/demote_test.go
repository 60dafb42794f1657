package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// newDemotedProxy runs the proxy in-process in front of upstream as an
// anthropic provider with demote_to_stream, with [daemon] daemonTOML
// and [provider.anthropic] providerTOML.
func newDemotedProxy(t *testing.T, upstream http.Handler, daemonTOML, providerTOML string) *testProxy {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	cfg, err := state.Parse("k.toml", []byte(fmt.Sprintf(`
[daemon]
max_wait = "0s"
%s

[provider.anthropic]
base_url = %q
demote_to_stream = true
%s

[[key]]
provider = "anthropic"
name = "a"
secret = %q
`, daemonTOML, up.URL, providerTOML, testSecret)))
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
	return p
}

// ask sends a non-streaming Messages request, which goes up demoted.
func (p *testProxy) ask(ctx context.Context) (*http.Response, string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", p.url+"/anthropic/v1/messages", strings.NewReader(`{"model":"claude-x","max_tokens":10,"messages":[]}`))
	req.Header.Set("X-Api-Key", "llmk-local-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), nil
}

// counts is what the usage recorded of all requests.
func (p *testProxy) counts() state.Counts {
	p.usage.mu.Lock()
	defer p.usage.mu.Unlock()
	var all state.Counts
	for _, c := range p.usage.rows {
		all.Add(c)
	}
	return all
}

const messageStart = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n"

// pings starts a message, says so on started, and then sends pings,
// every few milliseconds, until its request ends, which it reports on
// ended (or, should nothing end it, for longer than a test waits).
func pings(started, ended chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, messageStart)
		w.(http.Flusher).Flush()
		close(started)
		for giveUp := time.Now().Add(15 * time.Second); time.Now().Before(giveUp); {
			io.WriteString(w, "event: ping\ndata: {\"type\":\"ping\"}\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// waitClosed waits for ended, and fails the test if it does not close.
func waitClosed(t *testing.T, ended <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// A demoted stream whose client goes away is no longer read: the
// upstream request ends, and the attempt counts as partial (or as
// client-canceled, should the client leave before its headers came).
func TestDemotedStreamEndsWithItsClient(t *testing.T) {
	started, ended := make(chan struct{}), make(chan struct{})
	p := newDemotedProxy(t, pings(started, ended), "", `response_header_timeout = "1m"`+"\n"+`stream_idle_timeout = "1m"`)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		time.Sleep(50 * time.Millisecond) // a few pings
		cancel()
	}()
	if _, _, err := p.ask(ctx); err == nil {
		t.Fatal("the request was answered")
	}
	waitClosed(t, ended, "the demoted stream was read on after its client left")
	counted := func(c state.Counts) bool { return c.Partial+c.Failures["client-canceled"] == 1 }
	for deadline := time.Now().Add(5 * time.Second); !counted(p.counts()) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if c := p.counts(); c.Requests != 1 || c.Successes != 0 || !counted(c) {
		t.Errorf("a demoted stream its client left: %+v", c)
	}
}

// A demoted stream that goes on without end, pinging, is cut at
// response_header_timeout: its client has been waiting for headers all
// along.
func TestDemotedStreamIsHeldToTheHeaderTimeout(t *testing.T) {
	ended := make(chan struct{})
	p := newDemotedProxy(t, pings(make(chan struct{}), ended), "", `response_header_timeout = "2s"`+"\n"+`stream_idle_timeout = "1s"`)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, body, err := p.ask(ctx)
	if err != nil {
		t.Fatalf("no answer to an endless demoted stream: %v", err)
	}
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Llmkey-Error") != string(wire.UpstreamTimeout) ||
		!strings.Contains(body, "response_header_timeout") || !strings.Contains(body, `"type":"error"`) {
		t.Errorf("an endless demoted stream: %d %s %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), body)
	}
	waitClosed(t, ended, "the endless stream was read on")
	if c := p.counts(); c.Requests != 1 || c.Partial != 1 {
		t.Errorf("an endless demoted stream: %+v", c)
	}
}

// A demoted answer takes its memory from the budget request bodies take
// theirs from ([daemon] max_buffered_mb), and gives it back: past what
// its request may hold it is 502 answer-too-large, not to be retried;
// past what the others left, 429 overloaded. Either way the upstream is
// no longer read.
func TestDemotedAnswerTakesItsMemoryFromTheBudget(t *testing.T) {
	ended := make(chan struct{}, 2)
	delta := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + strings.Repeat("x", 4000) + "\"}}\n\n"
	p := newDemotedProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { ended <- struct{}{} }()
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, messageStart+"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
		for range 100_000 { // 400 MB
			if _, err := io.WriteString(w, delta); err != nil {
				return
			}
		}
	}), "max_buffered_mb = 2", "")
	for _, tc := range []struct {
		others int64 // bytes other requests hold
		status int
		code   wire.Code
	}{
		{0, http.StatusBadGateway, wire.AnswerTooLarge},
		{3 << 19, http.StatusTooManyRequests, wire.Overloaded},
	} {
		p.buffered.Add(tc.others)
		resp, body, err := p.ask(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status || resp.Header.Get("X-Llmkey-Error") != string(tc.code) || !strings.Contains(body, `"type":"error"`) {
			t.Errorf("with %d KiB held by others: %d %s %s", tc.others>>10, resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), body)
		}
		if tc.code == wire.AnswerTooLarge && (resp.Header.Get("X-Should-Retry") != "false" || !strings.Contains(body, `\"stream\": true`)) {
			t.Errorf("too large: %v %s", resp.Header, body)
		}
		waitClosed(t, ended, "the upstream was read on")
		if n := p.buffered.Add(-tc.others); n != 0 {
			t.Errorf("%d bytes still reserved after the answer", n)
		}
	}
}

// A demoted stream's error event that holds the key, in another case or
// JSON-escaped, is withheld as any error answer that holds it is.
func TestDemotedErrorEventWithholdsTheKey(t *testing.T) {
	escaped := ""
	for _, r := range testSecret {
		escaped += fmt.Sprintf(`\u%04x`, r)
	}
	for _, key := range []string{testSecret, strings.ToLower(testSecret), strings.ToUpper(testSecret), escaped} {
		p := newDemotedProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, messageStart)
			io.WriteString(w, `event: error`+"\n"+`data: {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key `+key+`"}}`+"\n\n")
		}), "", "")
		var logs syncBuffer
		p.Log = slog.New(slog.NewTextHandler(&logs, nil))
		resp, body, err := p.ask(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		seen := fmt.Sprint(resp.Header) + body + logs.String()
		for _, ps := range p.pools {
			views, _, _ := ps.View()
			seen += fmt.Sprint(views)
		}
		for j := len("sk-proj-"); j+12 <= len(testSecret); j++ {
			if leaks(seen, testSecret[j:j+12]) {
				t.Errorf("%.20s: %q of the key got through:\n%.400s", key, testSecret[j:j+12], seen)
				break
			}
		}
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "withheld") && !strings.Contains(body, state.Mask(testSecret)) {
			t.Errorf("%.20s: %d %s", key, resp.StatusCode, body)
		}
	}
}
