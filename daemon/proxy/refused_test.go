// SPDX-License-Identifier: MIT

package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// A request llmkey refuses because every key is cooling is counted as
// refused, by code, under its provider with no key (and its model), and
// in the pool's history: the first too, whose attempt cooled the key
// (a failure) before llmkey answered it.
func TestRefusalsAreCounted(t *testing.T) {
	p, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}`)
	}), `max_wait = "0s"`)
	for range 3 {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", url+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
		req.Header.Set("Authorization", "Bearer llmk-local-test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	p.usage.mu.Lock()
	defer p.usage.mu.Unlock()
	var refused, failed int64
	for k, c := range p.usage.rows {
		switch {
		case k.Key == "" && k.Provider == "openai" && k.Model == "gpt-4o":
			refused += c.Refused[string(rotate.AllKeysCooling)]
			if c.Requests != 0 || len(c.Refused) != 1 {
				t.Errorf("the refusals' row: %+v", c)
			}
		case k.Key == "a":
			failed += c.Failures["rate-limited"]
		}
	}
	if refused != 3 || failed != 1 {
		t.Errorf("%d refused, %d rate limited; want 3 and 1: %v", refused, failed, p.usage.rows)
	}
	_, prov, _ := p.pools["openai"].History()
	if prov[rotate.HistoryMinutes-1].Refused != 3 {
		t.Errorf("the provider's history: %+v", prov[rotate.HistoryMinutes-1])
	}
}

// An answer's cost at the keyfile's prices reaches its key's spend; one
// of a model without a price costs nothing and is named.
func TestAnswersCostTheirPrice(t *testing.T) {
	p, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		model := "gpt-4o"
		if strings.Contains(string(body), "mystery") {
			model = "mystery"
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c1","object":"chat.completion","model":"`+model+`","choices":[],"usage":{"prompt_tokens":1000000,"completion_tokens":100000}}`)
	}))
	for _, model := range []string{"gpt-4o", "mystery"} {
		req, _ := http.NewRequest("POST", url+"/openai/chat/completions", strings.NewReader(`{"model":"`+model+`"}`))
		req.Header.Set("Authorization", "Bearer llmk-local-test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The answer is settled a moment after its last byte reached the
	// client.
	var v []rotate.KeyView
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if v, _, _ = p.pools["openai"].View(); v[0].Unpriced != "" {
			break
		}
	}
	// gpt-4o's built-in price: $2.50 in, $10 out a million tokens.
	if want := int64(3.5 * rotate.NanoUSD); v[0].CostToday != want || v[0].Unpriced != "mystery" {
		t.Errorf("spent %d nano-dollars, unpriced %q; want %d and mystery", v[0].CostToday, v[0].Unpriced, want)
	}
}

// A WebSocket's responses count toward its key's spend as each ends,
// while the socket stays open: a budget sees them before it closes.
func TestSocketResponsesSpendAsTheyEnd(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	upstream := responsesSocket(t, nil, &seen, &mu)
	defer upstream.Close()
	cfg, err := state.Parse("k.toml", []byte(fmt.Sprintf("[provider.openai]\nbase_url = \"%s/v1\"\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"sk-a-aaaaaaaaaaaaaaaaaaaaaaa\"\nbudget_usd_day = 0.00009\n", upstream.URL)))
	if err != nil {
		t.Fatal(err)
	}
	d, url := newTestProxy(t, http.NotFoundHandler())
	d.publish(cfg)
	c, _, err := websocket.DefaultDialer.Dial(strings.Replace(url, "http", "ws", 1)+"/openai/responses", http.Header{"Authorization": {"Bearer llmk-local-test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
	// gpt-5's built-in price: 20 input, 10 cached, 7 output tokens.
	want := int64(96_250)
	var v []rotate.KeyView
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if v, _, _ = d.pools["openai"].View(); v[0].CostToday == want {
			break
		}
	}
	if v[0].CostToday != want || v[0].State != rotate.Limited || v[0].InFlight != 1 {
		t.Errorf("the open socket's key: spent %d nano-dollars (want %d), %s, %d in flight", v[0].CostToday, want, v[0].State, v[0].InFlight)
	}
}
