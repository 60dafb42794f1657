// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rotation that users can trust, end to end through the built
// daemon against the fake provider.

// twoKeys writes a keyfile with keys a and b of provider (openai unless
// said), extra settings in [daemon], and returns the proxy URL and token.
func (u *user) twoKeys(fakeURL, provider, daemonExtra, a, b string) (string, string) {
	u.t.Helper()
	base := fakeURL + "/v1"
	if provider != "openai" {
		base = fakeURL
	}
	kf := fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n%s\n\n[provider.%s]\nbase_url = %q\n", daemonExtra, provider, base)
	for _, k := range [][2]string{{"a", a}, {"b", b}} {
		kf += fmt.Sprintf("\n[[key]]\nprovider = %q\nname = %q\nsecret = %q\n", provider, k[0], k[1])
	}
	writeFile(u.t, u.keyfile(), kf, 0o600)
	env := u.proxyEnv()
	return env["LLMKEY_URL"], env["LLMKEY_TOKEN"]
}

// keyStatus is one key's object in "status --json".
func (u *user) keyStatus(provider, name string) map[string]any {
	u.t.Helper()
	st, _ := u.status()
	ps, _ := st["providers"].(map[string]any)[provider].(map[string]any)
	if ps == nil {
		u.fatalf("status has no provider %s: %v", provider, st)
	}
	for _, k := range ps["keys"].([]any) {
		if k := k.(map[string]any); k["name"] == name {
			return k
		}
	}
	u.fatalf("status has no key %s/%s", provider, name)
	return nil
}

func answer(status int, header map[string]string, body string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
		return true
	}
}

func mustOK(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), b)
	}
	return string(b)
}

func cooldown(t *testing.T, k map[string]any) float64 {
	t.Helper()
	s, ok := k["cooldown_seconds"].(float64)
	if !ok {
		t.Fatalf("no cooldown_seconds: %v", k)
	}
	return s
}

// A answers 429 with retry-after: 30, B is healthy.
func TestRateLimitedKeyCoolsForRetryAfter(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	fake.on(a, answer(429, map[string]string{"Retry-After": "30"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
	url, tok := u.twoKeys(fake.URL, "openai", "", a, b)

	for range 10 {
		mustOK(t, chat(t, url, tok, nil))
	}
	if n := fake.count(a); n != 1 {
		t.Fatalf("A got %d requests; after its 429 it must get none for 30 s", n)
	}
	k := u.keyStatus("openai", "a")
	if k["state"] != "cooling" || cooldown(t, k) < 25 || cooldown(t, k) > 30 || !strings.Contains(k["reason"].(string), "retry-after") {
		t.Errorf("A: %v", k)
	}
	if f := k["recent_failures"].([]any); len(f) != 1 || f[0].(map[string]any)["class"] != "rate-limited" {
		t.Errorf("A's recent failures: %v", f)
	}
	r := mustSucceed(t, u.llmkey("list"))
	if !regexp.MustCompile(`(?m)^openai\s+a\s+\S+\s+cooling\s+(2\d|30)s\s+\d+\s+\d+\s+-\s+rate limited \(retry-after\) on gpt-4o$`).MatchString(r.stdout) {
		t.Errorf("list:\n%s", r.stdout)
	}
	time.Sleep(1500 * time.Millisecond)
	for range 5 {
		mustOK(t, chat(t, url, tok, nil))
	}
	if n := fake.count(a); n != 1 {
		t.Errorf("A got a request while cooling")
	}
}

// The wait only in the body.
func TestWaitFromTheBody(t *testing.T) {
	t.Run("gemini RetryInfo", func(t *testing.T) {
		u := newUser(t)
		fake := newFakeProvider(t)
		a, b := u.canary("AIza-a-"), u.canary("AIza-b-")
		fake.on(a, answer(429, nil, `{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[`+
			`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},`+
			`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"45s"}]}}`))
		url, tok := u.twoKeys(fake.URL, "gemini", "", a, b)
		for range 4 {
			req, _ := http.NewRequest("POST", url+"/gemini/v1beta/models/gemini-2.5-flash:generateContent", strings.NewReader(`{"contents":[]}`))
			req.Header.Set("X-Goog-Api-Key", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			mustOK(t, resp)
		}
		k := u.keyStatus("gemini", "a")
		if fake.count(a) != 1 || k["state"] != "cooling" || cooldown(t, k) < 40 || cooldown(t, k) > 45 || !strings.Contains(k["reason"].(string), "RetryInfo") {
			t.Errorf("A (%d requests): %v", fake.count(a), k)
		}
	})
	t.Run("openai try again in", func(t *testing.T) {
		u := newUser(t)
		fake := newFakeProvider(t)
		a, b := u.canary("sk-a-"), u.canary("sk-b-")
		fake.on(a, answer(429, nil, `{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 30000, Requested 100. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`))
		url, tok := u.twoKeys(fake.URL, "openai", "", a, b)
		for range 4 {
			mustOK(t, chat(t, url, tok, nil))
		}
		k := u.keyStatus("openai", "a")
		if fake.count(a) != 1 || k["state"] != "cooling" || cooldown(t, k) < 15 || cooldown(t, k) > 20 || !strings.Contains(k["reason"].(string), "message") {
			t.Errorf("A (%d requests): %v", fake.count(a), k)
		}
	})
}

// An invalid key is parked, re-probed, and tried again at
// once when its keyfile entry changes.
func TestInvalidKeyParkedProbedAndRetriedOnEdit(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b, a2 := u.canary("sk-a-"), u.canary("sk-b-"), u.canary("sk-a2-")
	fake.on(a, answer(401, nil, `{"error":{"message":"Incorrect API key provided: `+a+`. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`))
	url, tok := u.twoKeys(fake.URL, "openai", "strategy = \"fill-first\"\nprobe_interval = \"1s\"", a, b)

	for range 5 {
		mustOK(t, chat(t, url, tok, nil))
	}
	k := u.keyStatus("openai", "a")
	if fake.count(a) != 1 || k["state"] != "parked" || !strings.Contains(k["reason"].(string), "invalid key") || k["until"] == nil {
		t.Fatalf("A (%d requests): %v", fake.count(a), k)
	}
	time.Sleep(1200 * time.Millisecond) // the first probe is due after 1 s
	mustOK(t, chat(t, url, tok, nil))
	if n := fake.count(a); n != 2 {
		t.Fatalf("A was not re-probed after probe_interval (%d requests)", n)
	}
	k = u.keyStatus("openai", "a")
	if k["state"] != "parked" || cooldown(t, k) < 1 || cooldown(t, k) > 2 {
		t.Errorf("after a failed probe, the next is 2 s away: %v", k)
	}

	// The person fixes the key in the keyfile: it is tried at once.
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), a, a2, 1), 0o600)
	deadline := time.Now().Add(3 * time.Second)
	for u.keyStatus("openai", "a")["state"] != "ready" {
		if time.Now().After(deadline) {
			t.Fatal("the edit was not picked up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustOK(t, chat(t, url, tok, nil))
	if fake.count(a2) != 1 {
		t.Errorf("the edited key was not tried at once")
	}
}

// Every key rate limited: 429 with Retry-After near the
// soonest reset, in the provider's shape; with max_wait above it, the
// request waits and succeeds.
func TestAllKeysCooling(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	fake.on(a, answer(429, map[string]string{"Retry-After": "60"}, `{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}`))
	fake.on(b, answer(429, map[string]string{"Retry-After": "50"}, `{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}`))
	url, tok := u.twoKeys(fake.URL, "openai", "", a, b)

	resp := chat(t, url, tok, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || resp.Header.Get("X-Llmkey-Error") != "all-keys-cooling" || ra < 45 || ra > 50 {
		t.Fatalf("got %d %q retry-after %q: %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), resp.Header.Get("Retry-After"), body)
	}
	var e struct {
		Error struct{ Message, Code string }
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code != "all-keys-cooling" || !strings.Contains(e.Error.Message, "in 50s") {
		t.Errorf("not in OpenAI's error shape, or no time named: %s", body)
	}
	start := time.Now()
	resp = chat(t, url, tok, nil) // at once, no upstream request
	resp.Body.Close()
	if resp.StatusCode != 429 || time.Since(start) > time.Second || len(fake.requests()) != 2 {
		t.Errorf("second request: %d after %v, %d upstream requests", resp.StatusCode, time.Since(start), len(fake.requests()))
	}

	// Short rate limits and max_wait above them: the request waits.
	u2 := newUser(t)
	fake2 := newFakeProvider(t)
	once := func(cred string) {
		var mu sync.Mutex
		n := 0
		fake2.on(cred, func(w http.ResponseWriter, r *http.Request) bool {
			mu.Lock()
			n++
			first := n == 1
			mu.Unlock()
			if first {
				return answer(429, map[string]string{"Retry-After": "1"}, `{"error":{"message":"slow down"}}`)(w, r)
			}
			return false
		})
	}
	a, b = u2.canary("sk-a-"), u2.canary("sk-b-")
	once(a)
	once(b)
	url, tok = u2.twoKeys(fake2.URL, "openai", `max_wait = "3s"`, a, b)
	start = time.Now()
	mustOK(t, chat(t, url, tok, nil))
	if el := time.Since(start); el < 700*time.Millisecond || el > 2500*time.Millisecond {
		t.Errorf("waited %v for a key that freed after 1 s", el)
	}
}

// A 500 or a dropped connection goes to the other key; a
// stream that breaks after its first bytes is not retried.
func TestFailuresRetriedOnAnotherKeyUntilBytesFlow(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	url, tok := u.twoKeys(fake.URL, "openai", `strategy = "fill-first"`, a, b)

	fake.on(a, answer(500, nil, `{"error":{"message":"The server had an error while processing your request."}}`))
	for range 2 {
		resp := chat(t, url, tok, nil)
		mustOK(t, resp)
		if resp.Header.Get("X-Llmkey-Key") != "openai/b" || resp.Header.Get("X-Llmkey-Attempts") != "2" {
			t.Errorf("served by %q after %q attempts", resp.Header.Get("X-Llmkey-Key"), resp.Header.Get("X-Llmkey-Attempts"))
		}
	}
	fake.on(a, func(w http.ResponseWriter, r *http.Request) bool {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close() // before any header
		return true
	})
	u.llmkey("reset", "openai/a")
	for range 2 {
		mustOK(t, chat(t, url, tok, nil))
	}

	// Bytes have gone out: no retry, and the client sees the break.
	fake.on(a, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"n\":0}\n\n")
		w.(http.Flusher).Flush()
		conn, buf, _ := w.(http.Hijacker).Hijack()
		buf.Flush()
		conn.Close()
		return true
	})
	u.llmkey("reset", "openai/a")
	before := len(fake.requests())
	req, _ := http.NewRequest("POST", url+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := bufio.NewReader(resp.Body).ReadString('\n')
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if first != "data: {\"n\":0}\n" || err == nil {
		t.Errorf("broken stream: first line %q, read error %v (a clean end hides the break)", first, err)
	}
	if n := len(fake.requests()) - before; n != 1 {
		t.Errorf("a stream that had started was sent %d times", n)
	}
}

// A 400 goes back at once, no retry, no key marked.
func TestCallerFaultPassesThrough(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	const bad = `{"error":{"message":"Invalid value for 'messages'.","type":"invalid_request_error","param":"messages","code":null}}`
	fake.on(a, answer(400, map[string]string{"X-Request-Id": "req_1"}, bad))
	fake.on(b, answer(400, nil, bad))
	url, tok := u.twoKeys(fake.URL, "openai", "", a, b)
	resp := chat(t, url, tok, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || string(body) != bad || resp.Header.Get("X-Llmkey-Error") != "" || resp.Header.Get("X-Request-Id") != "req_1" {
		t.Errorf("got %d %q: %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), body)
	}
	if n := len(fake.requests()); n != 1 {
		t.Errorf("a 400 was retried: %d upstream requests", n)
	}
	for _, name := range []string{"a", "b"} {
		if k := u.keyStatus("openai", name); k["state"] != "ready" || len(k["recent_failures"].([]any)) != 0 {
			t.Errorf("%s marked by a 400: %v", name, k)
		}
	}
}

// The max_concurrent and rpm limits hold.
func TestPerKeyLimits(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	slow := func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		time.Sleep(300 * time.Millisecond)
		return false
	}
	fake.on(a, slow)
	fake.on(b, slow)
	url, tok := u.twoKeys(fake.URL, "openai", "", a, b)
	kf := readFile(t, u.keyfile())
	kf = strings.ReplaceAll(kf, "name = \"a\"\n", "name = \"a\"\nmax_concurrent = 2\n")
	kf = strings.ReplaceAll(kf, "name = \"b\"\n", "name = \"b\"\nmax_concurrent = 2\n")
	writeFile(t, u.keyfile(), kf, 0o600)
	mustSucceed(t, u.llmkey("reload"))

	var wg sync.WaitGroup
	errs := make(chan string, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", url+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a request failed: %s", e)
	}
	if pa, pb := fake.peakInFlight(a), fake.peakInFlight(b); pa > 2 || pb > 2 || pa+pb < 3 {
		t.Errorf("peak in flight a=%d b=%d, limit 2 each", pa, pb)
	}

	// The 10 requests above count toward an rpm set now: the window is
	// the last minute's requests, sent before the limit or not. With rpm
	// 3 more than that on each key, and no waiting, the seventh request
	// is refused with a Retry-After, and no key went over.
	fake.on(a, nil)
	fake.on(b, nil)
	sentA, sentB := u.keyStatus("openai", "a")["requests_last_minute"].(float64), u.keyStatus("openai", "b")["requests_last_minute"].(float64)
	if sentA+sentB != 10 {
		t.Errorf("status counts %v+%v requests in the last minute, want 10", sentA, sentB)
	}
	kf = strings.Replace(readFile(t, u.keyfile()), "max_concurrent = 2", fmt.Sprintf("rpm = %d", int(sentA)+3), 1)
	kf = strings.Replace(kf, "max_concurrent = 2", fmt.Sprintf("rpm = %d", int(sentB)+3), 1)
	kf = strings.Replace(kf, "[daemon]\n", "[daemon]\nmax_wait = \"0s\"\n", 1)
	writeFile(t, u.keyfile(), kf, 0o600)
	mustSucceed(t, u.llmkey("reload"))
	ca, cb := fake.count(a), fake.count(b)
	var codes []int
	for range 7 {
		resp := chat(t, url, tok, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 {
			if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 50 || ra > 60 || resp.Header.Get("X-Llmkey-Error") != "all-keys-cooling" {
				t.Errorf("refused with retry-after %q, %q", resp.Header.Get("Retry-After"), resp.Header.Get("X-Llmkey-Error"))
			}
		}
	}
	if fake.count(a)-ca > 3 || fake.count(b)-cb > 3 {
		t.Errorf("rpm 3 exceeded: a=%d b=%d", fake.count(a)-ca, fake.count(b)-cb)
	}
	if fmt.Sprint(codes) != "[200 200 200 200 200 200 429]" {
		t.Errorf("codes %v", codes)
	}
}

// enable, disable [--for], reset by hand; a disable survives a restart.
func TestManualOverrides(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	url, tok := u.twoKeys(fake.URL, "openai", "", a, b)

	mustSucceed(t, u.llmkey("disable", "openai/a"))
	for range 4 {
		mustOK(t, chat(t, url, tok, nil))
	}
	if fake.count(a) != 0 {
		t.Fatal("a disabled key served")
	}
	mustSucceed(t, u.llmkey("restart"))
	env := u.proxyEnv()
	url = env["LLMKEY_URL"]
	for range 4 {
		mustOK(t, chat(t, url, tok, nil))
	}
	if k := u.keyStatus("openai", "a"); fake.count(a) != 0 || k["state"] != "disabled" {
		t.Fatalf("the disable did not survive a restart: %v", k)
	}
	r := mustSucceed(t, u.llmkey("enable", "openai/a"))
	if !strings.Contains(r.stderr, "enabled openai/a: now ready") {
		t.Errorf("enable said: %v", r)
	}
	for range 4 {
		mustOK(t, chat(t, url, tok, nil))
	}
	if fake.count(a) == 0 {
		t.Error("an enabled key did not serve")
	}
	mustSucceed(t, u.llmkey("disable", "--for", "1s", "openai/a"))
	if k := u.keyStatus("openai", "a"); k["state"] != "disabled" || cooldown(t, k) > 1 {
		t.Errorf("disable --for 1s: %v", k)
	}
	time.Sleep(1100 * time.Millisecond)
	if k := u.keyStatus("openai", "a"); k["state"] != "ready" {
		t.Errorf("disable --for did not end: %v", k)
	}
	if r := mustSucceed(t, u.llmkey("reset", "openai/a")); !strings.Contains(r.stderr, "reset openai/a: now ready") {
		t.Errorf("reset said: %v", r)
	}
	if r := u.llmkey("disable", "openai/nope"); r.code != 1 || !strings.Contains(r.stderr, "no key openai/nope") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("unknown key: %v", r)
	}
}
