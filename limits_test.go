// SPDX-License-Identifier: MIT

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Counts and limits that hold whatever the upstream says and however
// large the keyfile's limits are, end to end through the built daemon.

// absurdUsage answers every API in its own format with each token count
// set to the request's X-Usage value, a JSON number as it comes.
func absurdUsage(w http.ResponseWriter, r *http.Request) bool {
	io.Copy(io.Discard, r.Body)
	v := r.Header.Get("X-Usage")
	switch {
	case r.URL.Path == "/v1/chat/completions":
		writeJSONBody(w, `{"id":"c1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":`+v+`,"completion_tokens":`+v+`,"prompt_tokens_details":{"cached_tokens":`+v+`},"completion_tokens_details":{"reasoning_tokens":`+v+`}}}`)
	case r.URL.Path == "/v1/responses":
		sse(w, "response.completed", `{"type":"response.completed","response":{"id":"resp_1","status":"completed","model":"gpt-4o","output":[],`+
			`"usage":{"input_tokens":`+v+`,"output_tokens":`+v+`,"input_tokens_details":{"cached_tokens":`+v+`},"output_tokens_details":{"reasoning_tokens":`+v+`}}}}`)
	case r.URL.Path == "/v1/messages":
		sse(w, "message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],`+
			`"usage":{"input_tokens":`+v+`,"cache_read_input_tokens":`+v+`,"cache_creation_input_tokens":`+v+`,"output_tokens":`+v+`}}}`,
			"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":`+v+`}}`,
			"message_stop", `{"type":"message_stop"}`)
	default: // Gemini
		writeJSONBody(w, `{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"},"finishReason":"STOP","index":0}],`+
			`"usageMetadata":{"promptTokenCount":`+v+`,"cachedContentTokenCount":`+v+`,"candidatesTokenCount":`+v+`,"thoughtsTokenCount":`+v+`}}`)
	}
	return true
}

// An upstream that reports -7, 2^63-1 or 1e300 tokens of every kind, in
// each API's format, leaves usage sane: each answer counts at most 10^9
// of a kind and none below 0, the cost is finite, status agrees, the log
// says so once, and the usage files hold the same after a restart.
func TestUsageOfAbsurdTokenCounts(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	o, a, g := u.canary("sk-o-"), u.canary("sk-ant-a-"), u.canary("AIza-g-")
	for _, s := range []string{o, a, g} {
		fake.on(s, absurdUsage)
	}
	kf := fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n\n[provider.anthropic]\nbase_url = %q\n\n[provider.gemini]\nbase_url = %q\n",
		fake.URL+"/v1", fake.URL, fake.URL)
	for _, k := range [][2]string{{"openai", o}, {"anthropic", a}, {"gemini", g}} {
		kf += fmt.Sprintf("\n[[key]]\nprovider = %q\nname = \"k\"\nsecret = %q\n", k[0], k[1])
	}
	writeFile(t, u.keyfile(), kf, 0o600)
	env := u.proxyEnv()
	base, token := env["LLMKEY_URL"], env["LLMKEY_TOKEN"]
	calls := []struct{ path, body string }{
		{"/openai/chat/completions", `{"model":"gpt-4o","messages":[]}`},
		{"/openai/responses", `{"model":"gpt-4o","input":"hi","stream":true}`},
		{"/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[],"stream":true}`},
		{"/gemini/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[]}`},
	}
	for _, v := range []string{"-7", "9223372036854775807", "1e300"} {
		for _, c := range calls {
			req, _ := http.NewRequest("POST", base+c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("X-Usage", v)
			mustOK(t, mustDo(t, req))
		}
	}
	checkAbsurdTotals(t, u.usage(), "from the daemon")
	if logged := strings.Count(readFile(t, filepath.Join(u.stateDir(), "daemon.log")), "out of range (below 0, or over 10^9)"); logged != 1 {
		t.Errorf("%d log lines for 8 answers out of range, want 1", logged)
	}
	for _, p := range []string{"openai", "anthropic", "gemini"} {
		ks := u.keyStatus(p, "k")
		for _, f := range []string{"tokens_today", "tokens_last_minute"} {
			if n := ks[f].(float64); n < 0 || n > 3*3e9 {
				t.Errorf("%s/k %s = %v", p, f, n)
			}
		}
	}
	mustSucceed(t, u.llmkey("stop"))
	checkAbsurdTotals(t, u.usage(), "from the usage files")
}

// checkAbsurdTotals checks the usage of TestUsageOfAbsurdTokenCounts: the
// -7 answers count no token, the 2^63-1 ones 10^9 of each kind their
// format's sums leave (input less cached input is 0, so only Anthropic's
// input counts; Anthropic has no reasoning count), and the 1e300 ones
// nothing, since no integer was read.
func checkAbsurdTotals(t *testing.T, rep usageReport, where string) {
	t.Helper()
	const bound = 1_000_000_000
	got := rep.Total.tokens()
	want := tokens{In: bound, Out: 4 * bound, CacheRead: 4 * bound, CacheWrite: bound, Reasoning: 3 * bound}
	if got != want || rep.Total.Requests != 12 {
		t.Errorf("%s: %d requests, tokens %+v, want 12, %+v", where, rep.Total.Requests, got, want)
	}
	if c := rep.Total.Cost; c == nil || math.IsInf(*c, 0) || *c < 0 || *c > 1e6 {
		t.Errorf("%s: cost %s", where, costText(c))
	}
}

func costText(c *float64) string {
	if c == nil {
		return "unknown"
	}
	return fmt.Sprint(*c)
}

// A usage file that already holds a negative count or one near the
// largest int64 is read back with each held to its range, by usage
// without the daemon and by the daemon, which says so in its log and
// keeps the file's other rows.
func TestUsageFileWithAbsurdCounts(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	secret := u.canary("sk-")
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = %q\n",
		fake.URL+"/v1", secret), 0o600)
	day := time.Now().UTC().Format("2006-01-02")
	writeFile(t, filepath.Join(u.stateDir(), "usage-recent.json"), `{"version":1,"updated_at":"`+time.Now().UTC().Format(time.RFC3339)+`","rows":[
{"day":"`+day+`","provider":"openai","key":"old","fingerprint":"f","model":"gpt-4o","requests":-7,"successes":1,"input_tokens":-7,"output_tokens":9223372036854775807,"cache_read_tokens":0,"cache_write_tokens":0,"reasoning_tokens":0},
{"day":"`+day+`","provider":"openai","key":"other","fingerprint":"g","model":"gpt-4o","requests":2,"successes":2,"input_tokens":10,"output_tokens":20,"cache_read_tokens":0,"cache_write_tokens":0,"reasoning_tokens":0}
]}`, 0o600)
	check := func(rep usageReport, where string) {
		if rep.Total.Requests != 2 || rep.Total.In != 10 || rep.Total.Out != 1e12+20 {
			t.Errorf("%s: %+v", where, rep.Total)
		}
		if c := rep.Total.Cost; c == nil || math.IsInf(*c, 0) || *c > 1e8 {
			t.Errorf("%s: cost %s", where, costText(c))
		}
	}
	check(u.usage(), "without the daemon")
	mustSucceed(t, u.llmkey("start"))
	check(u.usage(), "from the daemon")
	if log := readFile(t, filepath.Join(u.stateDir(), "daemon.log")); !strings.Contains(log, "usage rows held counts out of range") || strings.Contains(log, "damaged") {
		t.Errorf("the daemon's log of a usage file with absurd counts:\n%s", log)
	}
}

// A thousand keys at the largest rpm, tpm and max_concurrent the keyfile
// takes cost the daemon no more memory than their number does: it idles
// under max_buffered_mb + 64 MiB, and its keys take requests.
func TestThousandKeysAtTheLargestLimitsIdleInLittleMemory(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	var kf strings.Builder
	fmt.Fprintf(&kf, "[daemon]\nlisten = \"127.0.0.1:0\"\nmax_buffered_mb = 64\n\n[provider.openai]\nbase_url = %q\n", fake.URL+"/v1")
	for i := range 1000 {
		fmt.Fprintf(&kf, "\n[[key]]\nprovider = \"openai\"\nname = \"k%d\"\nsecret = \"sk-test-%04d-0123456789abcdef\"\nrpm = 100000\ntpm = 1000000000000\nmax_concurrent = 100000\n", i, i)
	}
	writeFile(t, u.keyfile(), kf.String(), 0o600)
	env := u.proxyEnv()
	u.chatN(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], 20)
	mustSucceed(t, u.llmkey("reload")) // the pools built again from the same keys
	pid := u.daemonPID()
	rss, peak := procKB(t, pid, "VmRSS"), procKB(t, pid, "VmHWM")
	t.Logf("daemon with 1000 keys at rpm 100000: RSS %d kB, peak %d kB", rss, peak)
	if limit := (64 + 64) << 10; peak >= limit {
		t.Errorf("the daemon's peak RSS is %d kB, want under %d kB (max_buffered_mb + 64 MiB)", peak, limit)
	}
}

// status counts the last minute's requests and tokens of a key without
// any limit.
func TestStatusCountsTheLastMinuteOfAKeyWithoutLimits(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, token := u.oneKey(fake.URL, u.canary("sk-"))
	u.chatN(t, base, token, 5)
	// The fake's chat answer: 11 prompt tokens of which 4 cached, 7 out.
	if ks := u.keyStatus("openai", "a"); ks["requests_last_minute"] != 5.0 || ks["tokens_last_minute"] != 5*14.0 || ks["requests_today"] != 5.0 {
		t.Errorf("after 5 requests: %v", ks)
	}
}

// reset forgets that a key's answers said it is nearly spent: it takes
// its turn again at once.
func TestResetForgetsANearlySpentKey(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	nearlySpent := func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Ratelimit-Limit-Requests", "100")
		w.Header().Set("X-Ratelimit-Remaining-Requests", "3")
		w.Header().Set("X-Ratelimit-Reset-Requests", "10m")
		writeJSONBody(w, `{"id":"c1","object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
		return true
	}
	fake.on(a, nearlySpent)
	base, token := u.twoKeys(fake.URL, "openai", "", a, b)
	u.chatN(t, base, token, 4)
	if ks := u.keyStatus("openai", "a"); ks["scarce_until"] == nil {
		t.Fatalf("a is not nearly spent: %v", ks)
	}
	fake.on(a, nil) // from now on it has plenty
	mustSucceed(t, u.llmkey("reset", "openai/a"))
	if ks := u.keyStatus("openai", "a"); ks["scarce_until"] != nil {
		t.Errorf("after reset a is still nearly spent: %v", ks)
	}
	before := fake.count(a)
	u.chatN(t, base, token, 2)
	if fake.count(a) == before {
		t.Error("after reset a took neither of two requests")
	}
}

// disable --for says how long as it was written and until when, with the
// date when that is not today; a duration over the largest is refused.
func TestDisableForSaysTheDate(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.twoKeys(fake.URL, "openai", "", u.canary("sk-a-"), u.canary("sk-b-"))
	for _, c := range []struct {
		dur, says string
		after     time.Duration
	}{{"1d", "for 1d", 24 * time.Hour}, {"2h30m", "for 2h30m", 150 * time.Minute}, {"200000h", "for 8333d8h", 200000 * time.Hour}} {
		start := time.Now()
		r := mustSucceed(t, u.llmkey("disable", "--for", c.dur, "openai/a"))
		until := untilPattern(start, start.Add(c.after)) + "|" + untilPattern(time.Now(), time.Now().Add(c.after))
		if !regexp.MustCompile(`disabled openai/a ` + c.says + ` \(until (` + until + `)\)`).MatchString(r.stderr) {
			t.Errorf("disable --for %s said %q, want %q until %s", c.dur, r.stderr, c.says, until)
		}
	}
	if r := u.llmkey("disable", "--for", "36501d", "openai/a"); r.code != 2 || !strings.Contains(r.stderr, "longer than 100 years") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("disable --for 36501d: %v", r)
	}
}

// untilPattern matches t as disable prints it at now: the time of day
// when t is today, else the date and time.
func untilPattern(now, t time.Time) string {
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:") + `\d\d`
	}
	return t.Format("2006-01-02 15:04:") + `\d\d`
}

// The control socket's disable takes a duration string or no body; a
// number, a negative, an unreadable or an over-long duration, or an
// unknown field is a 400 that says why, and leaves the key as it was.
func TestDisableOnTheSocketRefusesBadDurations(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.twoKeys(fake.URL, "openai", "", u.canary("sk-a-"), u.canary("sk-b-"))
	ctl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(u.runtimeDir(), "sock"))
	}}}
	post := func(body string) (int, map[string]any) {
		resp, err := ctl.Post("http://llmkey/v1/keys/openai/a/disable", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for _, body := range []string{`{"for": 5}`, `{"for": "-1h"}`, `{"for": "soon"}`, `{"for": "36501d"}`, `{"for": "9999999999h"}`, `{"fro": "1h"}`, `{"for": "1h"`} {
		code, out := post(body)
		if msg, _ := out["error"].(string); code != 400 || msg == "" || out["hint"] == nil {
			t.Errorf("%s: %d %v", body, code, out)
		}
		if ks := u.keyStatus("openai", "a"); ks["state"] != "ready" {
			t.Fatalf("after %s the key is %v", body, ks["state"])
		}
	}
	if code, out := post(`{"for": "1d"}`); code != 200 || out["state"] != "disabled" || out["cooldown_seconds"].(float64) < 86000 {
		t.Errorf(`{"for": "1d"}: %d %v`, code, out)
	}
}
