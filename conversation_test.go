// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Rotation that keeps conversations, caches and work going,
// end to end through the built daemon against fakes that keep state per
// key as the providers keep it per organisation.

// keysFile writes a keyfile: [daemon] with extra, the providers' tables
// (pointed at the fake) with extra, and one key per "provider/name" of
// keys, in order, each with its secret and its own extra lines.
func (u *user) keysFile(daemonExtra, providers string, keys ...[3]string) (string, string) {
	u.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[daemon]\nlisten = \"127.0.0.1:0\"\nlog_requests = true\n%s\n\n%s\n", daemonExtra, providers)
	for _, k := range keys {
		p, n, _ := strings.Cut(k[0], "/")
		fmt.Fprintf(&b, "\n[[key]]\nprovider = %q\nname = %q\nsecret = %q\n%s\n", p, n, k[1], k[2])
	}
	writeFile(u.t, u.keyfile(), b.String(), 0o600)
	env := u.proxyEnv()
	return env["LLMKEY_URL"], env["LLMKEY_TOKEN"]
}

// statefulResponses answers the Responses API as OpenAI does for one
// organisation per key: each response it creates is stored with the key
// that created it, and a previous_response_id stored with another key is
// refused as the API refuses it. Chat requests with a prompt_cache_key
// read their cache only on the key that wrote it.
type statefulResponses struct {
	mu     sync.Mutex
	n      int
	stored map[string]string // response id -> the key that created it
	caches map[string]string // prompt_cache_key -> the key that holds it
}

func newStatefulResponses() *statefulResponses {
	return &statefulResponses{stored: map[string]string{}, caches: map[string]string{}}
}

func (s *statefulResponses) script(cred string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Model          string `json:"model"`
			Stream         bool   `json:"stream"`
			Previous       string `json:"previous_response_id"`
			PromptCacheKey string `json:"prompt_cache_key"`
		}
		json.Unmarshal(body, &req)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/v1/responses":
			if req.Previous != "" && s.stored[req.Previous] != cred {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":{"message":"Previous response with id '%s' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}`, req.Previous)
				return true
			}
			s.n++
			id := fmt.Sprintf("resp_%04d", s.n)
			s.stored[id] = cred
			resp := `{"id":"` + id + `","object":"response","created_at":1,"status":"%s","model":"gpt-5","output":%s,"previous_response_id":%s%s}`
			prev := "null"
			if req.Previous != "" {
				prev = `"` + req.Previous + `"`
			}
			msg := `[{"type":"message","id":"msg_` + id + `","status":"completed","role":"assistant","content":[{"type":"output_text","text":"turn","annotations":[]}]}]`
			usage := `,"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":80},"output_tokens":5,"total_tokens":105}`
			if !req.Stream {
				writeJSONBody(w, fmt.Sprintf(resp, "completed", msg, prev, usage))
				return true
			}
			sse(w, "response.created", `{"type":"response.created","sequence_number":0,"response":`+fmt.Sprintf(resp, "in_progress", "[]", prev, "")+`}`,
				"response.output_text.delta", `{"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_`+id+`","output_index":0,"content_index":0,"delta":"turn"}`,
				"response.completed", `{"type":"response.completed","sequence_number":2,"response":`+fmt.Sprintf(resp, "completed", msg, prev, usage)+`}`)
			return true
		case "/v1/chat/completions":
			cached := 0
			if req.PromptCacheKey != "" {
				if owner, ok := s.caches[req.PromptCacheKey]; ok && owner == cred {
					cached = 900
				} else if !ok {
					s.caches[req.PromptCacheKey] = cred
				}
			}
			writeJSONBody(w, fmt.Sprintf(`{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":5,"total_tokens":1005,"prompt_tokens_details":{"cached_tokens":%d}}}`, cached))
			return true
		}
		return false
	}
}

// post sends body to path through the proxy with the token and header.
func post(t *testing.T, base, token, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-api-key", token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// responseID is the id of a Responses answer, JSON or streamed.
func responseID(t *testing.T, body string) string {
	t.Helper()
	var v struct {
		ID       string `json:"id"`
		Response struct {
			ID string `json:"id"`
		} `json:"response"`
	}
	if strings.HasPrefix(body, "{") {
		json.Unmarshal([]byte(body), &v)
		return v.ID
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(d, `"response.completed"`) {
			json.Unmarshal([]byte(d), &v)
			return v.Response.ID
		}
	}
	t.Fatalf("no response id in %s", body)
	return ""
}

// A Responses conversation of 10 turns chained by previous_response_id
// succeeds with three keys under round-robin, other traffic between its
// turns; so does a chat conversation keyed by prompt_cache_key, each turn
// after the first reading the cache. A turn whose key cools waits for it;
// once its key is gone, the turn gets a clear llmkey error.
func TestConversationsStayOnTheirKey(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	store := newStatefulResponses()
	var secrets [3]string
	var keys [][3]string
	for i, n := range []string{"a", "b", "c"} {
		secrets[i] = u.canary("sk-" + n + "-")
		fake.on(secrets[i], store.script(secrets[i]))
		keys = append(keys, [3]string{"openai/" + n, secrets[i], ""})
	}
	providers := fmt.Sprintf("[provider.openai]\nbase_url = %q\nstrategy = \"round-robin\"\n", fake.URL+"/v1")
	base, token := u.keysFile("", providers, keys...)

	prev, key := "", ""
	for turn := 1; turn <= 10; turn++ {
		body := `{"model":"gpt-5","input":"turn ` + fmt.Sprint(turn) + `"`
		if prev != "" {
			body += `,"previous_response_id":"` + prev + `"`
		}
		if turn%2 == 0 {
			body += `,"stream":true`
		}
		resp, got := post(t, base, token, "/openai/responses", body+"}", nil)
		if resp.StatusCode != 200 {
			u.fatalf("turn %d: %d %s", turn, resp.StatusCode, got)
		}
		if key == "" {
			key = resp.Header.Get("X-Llmkey-Key")
		} else if k := resp.Header.Get("X-Llmkey-Key"); k != key {
			u.fatalf("turn %d went to %s, the conversation began on %s", turn, k, key)
		}
		prev = responseID(t, got)
		// Other traffic turns the round-robin between turns.
		mustOK(t, chat(t, base, token, nil))
	}

	// A chat conversation keyed by prompt_cache_key: one key, cache hits.
	chatKey := ""
	for turn := 1; turn <= 6; turn++ {
		resp, got := post(t, base, token, "/openai/chat/completions", `{"model":"gpt-4o","prompt_cache_key":"proj-42","messages":[]}`, nil)
		if resp.StatusCode != 200 {
			u.fatalf("chat turn %d: %d %s", turn, resp.StatusCode, got)
		}
		if chatKey == "" {
			chatKey = resp.Header.Get("X-Llmkey-Key")
		} else if k := resp.Header.Get("X-Llmkey-Key"); k != chatKey {
			u.fatalf("chat turn %d went to %s, began on %s", turn, k, chatKey)
		}
		if turn > 1 && !strings.Contains(got, `"cached_tokens":900`) {
			u.errorf("chat turn %d missed the prompt cache: %s", turn, got)
		}
		mustOK(t, chat(t, base, token, nil))
	}

	// The daemon restarts, and forgets which key holds the conversation:
	// the next turn finds it (the other keys say they do not have it),
	// and the turns after go straight there.
	u.stopDaemon()
	base, token = u.keysFile("", providers, keys...)
	mustOK(t, chat(t, base, token, nil)) // the round-robin's next key is not the conversation's
	for i := range 3 {
		resp, got := post(t, base, token, "/openai/responses", `{"model":"gpt-5","input":"after a restart","previous_response_id":"`+prev+`"}`, nil)
		if resp.StatusCode != 200 || resp.Header.Get("X-Llmkey-Key") != key {
			u.fatalf("turn %d after a restart: %d on %s: %s", i, resp.StatusCode, resp.Header.Get("X-Llmkey-Key"), got)
		}
		if i == 0 && key == "openai/a" && resp.Header.Get("X-Llmkey-Attempts") == "1" {
			u.errorf("the first turn after a restart went straight to %s: the search was not tested", key)
		}
		if i > 0 && resp.Header.Get("X-Llmkey-Attempts") != "1" {
			u.errorf("turn %d after a restart took %s attempts", i, resp.Header.Get("X-Llmkey-Attempts"))
		}
		prev = responseID(t, got)
	}

	// The conversation's key is rate limited for a second: the next turn
	// waits for it (max_wait) rather than go to a key that cannot read it.
	name := strings.TrimPrefix(key, "openai/")
	idx := strings.Index("abc", name)
	var once sync.Once
	next := store.script(secrets[idx])
	fake.on(secrets[idx], func(w http.ResponseWriter, r *http.Request) bool {
		limited := false
		once.Do(func() { limited = true })
		if limited {
			return answer(429, map[string]string{"Retry-After": "1"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)(w, r)
		}
		return next(w, r)
	})
	start := time.Now()
	resp, got := post(t, base, token, "/openai/responses", `{"model":"gpt-5","input":"after","previous_response_id":"`+prev+`"}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Llmkey-Key") != key {
		u.fatalf("a turn whose key cooled for 1s: %d on %s: %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Key"), got)
	}
	if time.Since(start) < 900*time.Millisecond {
		u.errorf("the turn did not wait for its key: %s", time.Since(start))
	}
	prev = responseID(t, got)

	// Its key leaves the keyfile: the next turn is told why, in the
	// provider's error shape, and nothing is sent to another key.
	var rest [][3]string
	for _, k := range keys {
		if k[0] != key {
			rest = append(rest, k)
		}
	}
	before := len(fake.requests())
	u.keysFile("", providers, rest...)
	u.waitFor("the keyfile without "+key, func() bool {
		st, _ := u.status()
		ps, _ := st["providers"].(map[string]any)["openai"].(map[string]any)
		return ps != nil && len(ps["keys"].([]any)) == 2
	})
	resp, got = post(t, base, token, "/openai/responses", `{"model":"gpt-5","input":"gone","previous_response_id":"`+prev+`"}`, nil)
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("X-Llmkey-Error") != "conversation-key-gone" ||
		!strings.Contains(got, key) || !strings.Contains(got, "start a new conversation") {
		u.errorf("a turn whose key is gone: %d %s %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), got)
	}
	if len(fake.requests()) != before {
		u.errorf("a turn whose key is gone was sent upstream")
	}
	u.assertNoCanary(got)
	u.checkDaemonLog()
}

// metrics reads /metrics through the proxy.
func (u *user) metrics(base, token string) map[string][]map[string]string {
	u.t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		u.fatalf("/metrics: %v %v", resp, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		u.fatalf("/metrics does not parse: %v", err)
	}
	out := map[string][]map[string]string{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			l := labels(m.GetLabel())
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			l["value"] = fmt.Sprint(v)
			out[name] = append(out[name], l)
		}
	}
	return out
}

// metric is the value of the series of name whose labels include want.
func metric(series map[string][]map[string]string, name string, want map[string]string) float64 {
	var sum float64
	for _, l := range series[name] {
		match := true
		for k, v := range want {
			match = match && l[k] == v
		}
		if match {
			var f float64
			fmt.Sscan(l["value"], &f)
			sum += f
		}
	}
	return sum
}

// waitFor polls cond for up to 5 s.
func (u *user) waitFor(what string, cond func() bool) {
	u.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	u.fatalf("waited 5s for %s", what)
}

// 20 turns of one Claude Code session (by its session header) hit one
// key while a second session runs on another; after the first key cools,
// its session moves once and stays. Metrics and status show the hits,
// the move and the cache reads.
func TestSessionsKeepTheirKeyAndMoveOnce(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-ant-a-"), u.canary("sk-ant-b-")
	providers := fmt.Sprintf("[provider.anthropic]\nbase_url = %q\n", fake.URL)
	base, token := u.keysFile("", providers, [3]string{"anthropic/a", a, ""}, [3]string{"anthropic/b", b, ""})
	turn := func(session string) string {
		t.Helper()
		resp, got := post(t, base, token, "/anthropic/v1/messages", `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			map[string]string{"X-Claude-Code-Session-Id": session, "anthropic-version": "2023-06-01"})
		if resp.StatusCode != 200 {
			u.fatalf("session %s: %d %s", session, resp.StatusCode, got)
		}
		return resp.Header.Get("X-Llmkey-Key")
	}
	first, second := turn("s-one"), turn("s-two")
	if first == second {
		u.fatalf("two sessions began on one key, %s", first)
	}
	for i := range 20 {
		if k := turn("s-one"); k != first {
			u.fatalf("turn %d of s-one went to %s, not %s", i, k, first)
		}
		if k := turn("s-two"); k != second {
			u.fatalf("turn %d of s-two went to %s, not %s", i, k, second)
		}
	}
	// The first session's key is rate limited: the session moves, once.
	cooled := a
	if first == "anthropic/b" {
		cooled = b
	}
	fake.on(cooled, answer(429, map[string]string{"Retry-After": "60"}, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}`))
	moved := turn("s-one")
	if moved != second {
		u.fatalf("after its key cooled s-one went to %s", moved)
	}
	fake.on(cooled, nil)
	for i := range 5 {
		if k := turn("s-one"); k != moved {
			u.fatalf("turn %d after the move went to %s, not %s", i, k, moved)
		}
	}
	m := u.metrics(base, token)
	fk, sk := strings.TrimPrefix(first, "anthropic/"), strings.TrimPrefix(second, "anthropic/")
	// 20 turns, and the attempt of the 21st that its 429 moved.
	if v := metric(m, "llmkey_affinity_total", map[string]string{"key": fk, "result": "hit"}); v != 21 {
		u.errorf("hits on %s: %v, want 21", fk, v)
	}
	if v := metric(m, "llmkey_affinity_total", map[string]string{"key": sk, "result": "moved"}); v != 1 {
		u.errorf("moves to %s: %v, want 1", sk, v)
	}
	if v := metric(m, "llmkey_affinity_total", map[string]string{"key": sk, "result": "hit"}); v != 25 {
		u.errorf("hits on %s: %v, want 25 (20 of s-two, 5 of s-one after its move)", sk, v)
	}
	if v := metric(m, "llmkey_tokens_total", map[string]string{"key": fk, "type": "cache_read"}); v != 21*5 {
		u.errorf("cache reads on %s: %v", fk, v)
	}
	ks := u.keyStatus("anthropic", sk)
	if ks["affinity_hits"] != 25.0 || ks["affinity_moves"] != 1.0 || ks["cache_read_tokens_today"] != float64(27*5) {
		u.errorf("status of %s: %v", sk, ks)
	}
	st := mustSucceed(t, u.llmkey("status"))
	if !strings.Contains(st.stdout, "KEPT") || !strings.Contains(st.stdout, "MOVED") {
		u.errorf("status shows no affinity:\n%s", st.stdout)
	}
}

// An organisation-wide 429 on one key of a group cools the whole group,
// and the request is served by a key outside it, at once.
func TestOrgWideLimitCoolsTheGroup(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a1, a2, solo := u.canary("sk-a1-"), u.canary("sk-a2-"), u.canary("sk-solo-")
	providers := fmt.Sprintf("[provider.openai]\nbase_url = %q\nstrategy = \"fill-first\"\n", fake.URL+"/v1")
	base, token := u.keysFile("", providers, [3]string{"openai/a1", a1, `group = "acme"`}, [3]string{"openai/a2", a2, `group = "acme"`},
		[3]string{"openai/solo", solo, ""})
	fake.on(a1, answer(429, map[string]string{"Retry-After": "20"},
		`{"error":{"message":"Rate limit reached for gpt-4o in organization org-acme on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`))
	resp := chat(t, base, token, nil)
	mustOK(t, resp)
	if k := resp.Header.Get("X-Llmkey-Key"); k != "openai/solo" {
		u.fatalf("after an organisation-wide 429 on a1 the request went to %s", k)
	}
	if n := fake.count(a2); n != 0 {
		u.errorf("a2, of the same organisation, was sent %d requests", n)
	}
	for _, n := range []string{"a1", "a2"} {
		if ks := u.keyStatus("openai", n); ks["state"] != "cooling" || ks["group"] != "acme" || !strings.Contains(fmt.Sprint(ks["reason"]), "organisation-wide") {
			u.errorf("%s after the organisation-wide limit: %v", n, ks)
		}
	}
	if ks := u.keyStatus("openai", "solo"); ks["state"] != "ready" {
		u.errorf("solo: %v", ks)
	}
}

// With every openai key cooling, a request is served by the fallback
// provider with the mapped model after primary_wait; with the primary
// back within the wait, by the primary. Each path is counted in metrics
// and in usage under the provider that served it.
func TestFallbackAfterPrimaryWait(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b, or := u.canary("sk-a-"), u.canary("sk-b-"), u.canary("sk-or-v1-")
	var mu sync.Mutex
	var orModels []string
	fake.on(or, func(w http.ResponseWriter, r *http.Request) bool {
		body, _ := io.ReadAll(r.Body)
		var req struct{ Model string }
		json.Unmarshal(body, &req)
		mu.Lock()
		orModels = append(orModels, req.Model)
		mu.Unlock()
		writeJSONBody(w, `{"id":"gen-1","object":"chat.completion","created":1,"model":"`+req.Model+`","choices":[{"index":0,"message":{"role":"assistant","content":"from openrouter"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`)
		return true
	})
	limited := func(wait string) func(http.ResponseWriter, *http.Request) bool {
		return answer(429, map[string]string{"Retry-After": wait}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)
	}
	fake.on(a, limited("60"))
	fake.on(b, limited("60"))
	providers := fmt.Sprintf("[provider.openai]\nbase_url = %q\nfallback = [\"openrouter\"]\nfallback_models = { \"gpt-4o\" = \"openai/gpt-4o\" }\nprimary_wait = \"1500ms\"\n\n[provider.openrouter]\nbase_url = %q\n",
		fake.URL+"/v1", fake.URL+"/v1")
	// Without a key of the fallback, status says so.
	u.keysFile("", providers, [3]string{"openai/a", a, ""}, [3]string{"openai/b", b, ""})
	if r := u.llmkey("status"); r.code != 1 || !strings.Contains(r.stdout+r.stderr, "falls over to openrouter, which has no key") {
		u.errorf("status with a fallback without keys: %v", r)
	}
	base, token := u.keysFile("", providers, [3]string{"openai/a", a, ""}, [3]string{"openai/b", b, ""}, [3]string{"openrouter/main", or, ""})
	u.waitFor("the keyfile with openrouter's key", func() bool {
		st, _ := u.status()
		return st["providers"].(map[string]any)["openrouter"] != nil
	})

	// Both openai keys answer 429 for a minute: after 1.5 s of waiting
	// for them, openrouter serves, with the mapped model.
	start := time.Now()
	resp := chat(t, base, token, nil)
	got := mustOK(t, resp)
	took := time.Since(start)
	if resp.Header.Get("X-Llmkey-Provider") != "openrouter" || resp.Header.Get("X-Llmkey-Key") != "openrouter/main" || !strings.Contains(got, "from openrouter") {
		u.fatalf("with every openai key cooling: %s %s %s", resp.Header.Get("X-Llmkey-Provider"), resp.Header.Get("X-Llmkey-Key"), got)
	}
	if took < 1500*time.Millisecond || took > 4*time.Second {
		u.errorf("served by the fallback after %s, want after primary_wait (1.5s)", took)
	}
	mu.Lock()
	if len(orModels) != 1 || orModels[0] != "openai/gpt-4o" {
		u.errorf("openrouter was asked for %v", orModels)
	}
	mu.Unlock()

	// The primary comes back within the wait: each key answers 429 with
	// a wait of 1 s once, then serves; the request waits for it.
	for _, k := range []string{a, b} {
		var once sync.Once
		fake.on(k, func(w http.ResponseWriter, r *http.Request) bool {
			first := false
			once.Do(func() { first = true })
			return first && limited("1")(w, r)
		})
	}
	mustSucceed(t, u.llmkey("reset", "openai/a"))
	mustSucceed(t, u.llmkey("reset", "openai/b"))
	resp = chat(t, base, token, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		u.fatalf("status %d", resp.StatusCode)
	}
	if p := resp.Header.Get("X-Llmkey-Provider"); p != "openai" {
		u.errorf("with the primary back within the wait, served by %s", p)
	}

	// An overloaded primary (529): the fallback serves at once, without
	// the wait (every key of the primary would be overloaded).
	overloaded := answer(529, nil, `{"error":{"message":"The server is overloaded","type":"server_error","code":"overloaded"}}`)
	fake.on(a, overloaded)
	fake.on(b, overloaded)
	start = time.Now()
	resp = chat(t, base, token, nil)
	mustOK(t, resp)
	if p := resp.Header.Get("X-Llmkey-Provider"); p != "openrouter" || time.Since(start) > time.Second {
		u.errorf("with the primary overloaded: served by %s after %s", p, time.Since(start))
	}

	// The fallback is rate limited too: the client gets its answer, and
	// the chain is counted exhausted.
	fake.on(or, limited("60"))
	resp = chat(t, base, token, nil)
	resp.Body.Close()
	if resp.StatusCode != 429 {
		u.errorf("with the primary and the fallback out: %d", resp.StatusCode)
	}

	m := u.metrics(base, token)
	for result, want := range map[string]float64{"entered": 4, "fell_back": 2, "recovered": 1, "exhausted": 1} {
		if v := metric(m, "llmkey_fallback_total", map[string]string{"provider": "openai", "result": result}); v != want {
			u.errorf("llmkey_fallback_total{result=%q} = %v, want %v", result, v, want)
		}
	}
	rep := u.usage("--by", "provider")
	served := map[string]float64{}
	for _, row := range rep.Rows {
		served[row.Provider] += float64(row.Successes)
	}
	if served["openrouter"] != 2 || served["openai"] != 1 {
		u.errorf("usage by provider: %+v", rep.Rows)
	}
}

// A key whose remaining-requests header falls under pace_below gets
// fewer requests until its reset.
func TestPacingAwayFromANearlySpentKey(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	headroom := func(remaining string) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Ratelimit-Limit-Requests", "100")
			w.Header().Set("X-Ratelimit-Remaining-Requests", remaining)
			w.Header().Set("X-Ratelimit-Reset-Requests", "30s")
			writeJSONBody(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
			return true
		}
	}
	fake.on(a, headroom("3"))
	fake.on(b, headroom("80"))
	base, token := u.twoKeys(fake.URL, "openai", "", a, b)
	u.chatN(t, base, token, 20)
	if na, nb := fake.count(a), fake.count(b); na > 2 || nb < 18 {
		u.errorf("20 requests with a nearly spent: a got %d, b %d", na, nb)
	}
	if ks := u.keyStatus("openai", "a"); ks["scarce_until"] == nil {
		u.errorf("status does not say a is nearly spent: %v", ks)
	}
}
