// SPDX-License-Identifier: MIT

package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// responsesSocket is a fake of the Responses API over WebSocket at
// /v1/responses: keys in refuse get that status before the 101; others
// answer each response.create with created, a delta and completed, with
// usage.
func responsesSocket(t *testing.T, refuse map[string]int, seen *[]string, mu *sync.Mutex) *httptest.Server {
	up := websocket.Upgrader{EnableCompression: true}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/responses" || !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, `{"error":{"message":"not found"}}`, 404)
			return
		}
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		*seen = append(*seen, key)
		mu.Unlock()
		if s := refuse[key]; s != 0 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(s)
			fmt.Fprintf(w, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if !strings.Contains(string(msg), `"response.create"`) {
				continue
			}
			id := fmt.Sprintf("resp_%d", i)
			c.WriteMessage(websocket.TextMessage, []byte(`{"type":"response.created","response":{"id":"`+id+`","model":"gpt-5"}}`))
			c.WriteMessage(websocket.TextMessage, []byte(`{"type":"response.output_text.delta","delta":"hi"}`))
			c.WriteMessage(websocket.TextMessage, []byte(`{"type":"response.completed","response":{"id":"`+id+`","model":"gpt-5","usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":2}}}}`))
		}
	}))
}

// A WebSocket goes through on the provider's route with the key swapped
// in: the first key refused at the handshake (429), the second serves,
// and each completed response is counted with its tokens.
func TestWebSocketPassthrough(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	upstream := responsesSocket(t, map[string]int{"sk-first-aaaaaaaaaaaaaaaaaaaa": 429}, &seen, &mu)
	defer upstream.Close()
	cfg, err := state.Parse("k.toml", []byte(fmt.Sprintf(`[daemon]
strategy = "fill-first"

[provider.openai]
base_url = "%s/v1"

[[key]]
provider = "openai"
name = "first"
secret = "sk-first-aaaaaaaaaaaaaaaaaaaa"

[[key]]
provider = "openai"
name = "second"
secret = "sk-second-aaaaaaaaaaaaaaaaaaa"
`, upstream.URL)))
	if err != nil {
		t.Fatal(err)
	}
	d, url := newTestProxy(t, http.NotFoundHandler())
	d.publish(cfg)

	hdr := http.Header{"Authorization": {"Bearer llmk-local-test"}}
	c, resp, err := websocket.DefaultDialer.Dial(strings.Replace(url, "http", "ws", 1)+"/openai/responses", hdr)
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	if resp.Header.Get("X-Llmkey-Key") != "openai/second" || resp.Header.Get("X-Llmkey-Attempts") != "2" {
		t.Errorf("served by %q after %q attempts", resp.Header.Get("X-Llmkey-Key"), resp.Header.Get("X-Llmkey-Attempts"))
	}
	for range 2 {
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"response.create","model":"gpt-5","input":"hi"}`))
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(msg), "response.completed") {
				break
			}
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.Close()
	for deadline := time.Now().Add(3 * time.Second); d.InFlight()+d.inSockets.Load() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the WebSocket is still open in the proxy")
		}
	}
	mu.Lock()
	if len(seen) != 2 || seen[0] != "sk-first-aaaaaaaaaaaaaaaaaaaa" || seen[1] != "sk-second-aaaaaaaaaaaaaaaaaaa" {
		t.Errorf("the upstream saw %v", seen)
	}
	mu.Unlock()
	d.usage.mu.Lock()
	var ok, failed state.Counts
	for k, c := range d.usage.rows {
		if k.Key == "second" && k.Model == "gpt-5" {
			ok.Add(c)
		}
		if k.Key == "first" {
			failed.Add(c)
		}
	}
	d.usage.mu.Unlock()
	if ok.Requests != 2 || ok.Successes != 2 || ok.Input != 40 || ok.CacheRead != 20 || ok.Output != 14 || ok.Reasoning != 4 {
		t.Errorf("counted on the second key: %+v", ok)
	}
	if failed.Requests != 1 || failed.Failures["rate-limited"] != 1 {
		t.Errorf("counted on the first key: %+v", failed)
	}
	views, _, _ := d.pools["openai"].View()
	if views[0].State != rotate.Cooling || views[1].InFlight != 0 {
		t.Errorf("keys after: %+v", views)
	}
	// The responses the socket created live with its key: a later turn
	// that refers to one goes there, though fill-first would pick the
	// first key again now.
	d.pools["openai"].Reset("first")
	l, den := d.pools["openai"].Take(rotate.Ask{Session: wire.ResponseRef("resp_1"), Pinned: true})
	if den != nil || l.Name != "second" || l.Affinity != rotate.Hit {
		t.Errorf("a turn after the socket's response: %+v %+v", l, den)
	}
	l.Cancel()
}

// Every key refused at the handshake: the client gets the provider's own
// refusal, not a 101.
func TestWebSocketRefusedByEveryKey(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	upstream := responsesSocket(t, map[string]int{testSecret: 401}, &seen, &mu)
	defer upstream.Close()
	d, url := newTestProxy(t, http.NotFoundHandler(), `max_wait = "0s"`)
	cfg := *d.snap.Load().Config
	cfg.Providers = map[string]state.ProviderConfig{"openai": {BaseURL: upstream.URL + "/v1"}}
	d.publish(&cfg)
	_, resp, err := websocket.DefaultDialer.Dial(strings.Replace(url, "http", "ws", 1)+"/openai/responses",
		http.Header{"Authorization": {"Bearer llmk-local-test"}})
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("got %v %v", err, resp)
	}
}

// recordedEvents keeps what the fallback chain reported.
type recordedEvents struct {
	noEvents
	mu        sync.Mutex
	fallbacks []string
}

func (e *recordedEvents) Fallback(provider, to string, result FallbackResult) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fallbacks = append(e.fallbacks, provider+">"+to+":"+string(result))
}

// A WebSocket falls over as a request does: the primary's only key is
// refused at the handshake, and after primary_wait the fallback's key
// serves; the answer says which provider it is.
func TestWebSocketFallsOver(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	upstream := responsesSocket(t, map[string]int{"sk-primary-aaaaaaaaaaaaaaaaaaa": 429}, &seen, &mu)
	defer upstream.Close()
	cfg, err := state.Parse("k.toml", []byte(fmt.Sprintf(`
[provider.openai]
base_url = "%[1]s/v1"
fallback = ["openrouter"]
primary_wait = "200ms"

[provider.openrouter]
base_url = "%[1]s/v1"

[[key]]
provider = "openai"
name = "only"
secret = "sk-primary-aaaaaaaaaaaaaaaaaaa"

[[key]]
provider = "openrouter"
name = "or"
secret = "sk-or-v1-aaaaaaaaaaaaaaaaaaaaa"
`, upstream.URL)))
	if err != nil {
		t.Fatal(err)
	}
	d, url := newTestProxy(t, http.NotFoundHandler())
	events := &recordedEvents{}
	d.Events = events
	d.publish(cfg)
	start := time.Now()
	c, resp, err := websocket.DefaultDialer.Dial(strings.Replace(url, "http", "ws", 1)+"/openai/responses", http.Header{"Authorization": {"Bearer llmk-local-test"}})
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer c.Close()
	if resp.Header.Get("X-Llmkey-Key") != "openrouter/or" {
		t.Errorf("served by %q", resp.Header.Get("X-Llmkey-Key"))
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > time.Second {
		t.Errorf("fell over after %s, want after primary_wait (200ms)", took)
	}
	events.mu.Lock()
	defer events.mu.Unlock()
	if strings.Join(events.fallbacks, " ") != "openai>openrouter:entered openai>openrouter:fell_back" {
		t.Errorf("events: %v", events.fallbacks)
	}
}
