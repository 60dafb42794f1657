// SPDX-License-Identifier: MIT

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Usage accounting and state that survives anything, end to end
// through the built daemon.

type tokens struct{ In, Out, CacheRead, CacheWrite, Reasoning int64 }

func (t *tokens) add(o tokens) {
	t.In += o.In
	t.Out += o.Out
	t.CacheRead += o.CacheRead
	t.CacheWrite += o.CacheWrite
	t.Reasoning += o.Reasoning
}

// sdkUsage is what one request of TestSDKHelper used, as the fake reports
// it and as llmkey must count it: OpenAI and Gemini count cached input
// inside the input, llmkey apart; Gemini's thoughts are output.
func sdkUsage(s seenRequest) (string, tokens) {
	switch {
	case s.Path == "/v1/chat/completions" && s.Stream:
		return "gpt-4o", tokens{In: 13, Out: 5}
	case s.Path == "/v1/chat/completions":
		return "gpt-4o", tokens{In: 7, CacheRead: 4, Out: 7, Reasoning: 2}
	case s.Path == "/v1/responses":
		return "gpt-4o", tokens{In: 11, CacheRead: 6, Out: 9, Reasoning: 3}
	case s.Path == "/v1/messages" && s.Stream:
		return "claude-x", tokens{In: 23, Out: 12, CacheRead: 3, CacheWrite: 1}
	case s.Path == "/v1/messages":
		return "claude-x", tokens{In: 19, Out: 8, CacheRead: 5, CacheWrite: 2}
	case s.Stream:
		return "gemini-x", tokens{In: 31, Out: 6}
	default:
		return "gemini-x", tokens{In: 20, CacheRead: 9, Out: 14, Reasoning: 4}
	}
}

type usageRow struct {
	Provider, Key, Fingerprint, Model, Day, Label string
	Requests, Successes, Partial                  int64
	Failures                                      map[string]int64
	In                                            int64    `json:"input_tokens"`
	Out                                           int64    `json:"output_tokens"`
	CacheRead                                     int64    `json:"cache_read_tokens"`
	CacheWrite                                    int64    `json:"cache_write_tokens"`
	Reasoning                                     int64    `json:"reasoning_tokens"`
	Cost                                          *float64 `json:"cost_usd"`
	Unpriced                                      []string `json:"unpriced_models"`
}

func (r usageRow) tokens() tokens {
	return tokens{In: r.In, Out: r.Out, CacheRead: r.CacheRead, CacheWrite: r.CacheWrite, Reasoning: r.Reasoning}
}

type usageReport struct {
	Source   string
	Rows     []usageRow
	Total    usageRow
	Unpriced []string `json:"unpriced_models"`
}

// usage runs "llmkey usage --json" with args.
func (u *user) usage(args ...string) usageReport {
	u.t.Helper()
	r := mustSucceed(u.t, u.llmkey(append([]string{"usage", "--json"}, args...)...))
	var rep usageReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		u.fatalf("usage --json: %v\n%s", err, r.stdout)
	}
	return rep
}

const pricingTable = `
[pricing."gpt-4o"]
input = 2.5
output = 10
cache_read = 1.25

[pricing."claude-*"]
input = 3
output = 15
cache_read = 0.3
cache_write = 3.75
`

// N runs of every API, streamed and not, through exec
// with the official SDKs; usage totals match per key and model, cost
// matches the pricing table, and /metrics agrees.
func TestUsageExactPerKeyAndModel(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")}
	u.writeKeyfile(fake.URL, keys)
	second := u.canary("sk-proj-home-")
	f, _ := os.OpenFile(u.keyfile(), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "\n[[key]]\nprovider = \"openai\"\nname = \"home\"\nsecret = %q\n%s", second, pricingTable)
	f.Close()
	names := map[string]string{keys["openai"]: "openai/work", second: "openai/home", keys["anthropic"]: "anthropic/work", keys["gemini"]: "gemini/work"}

	const runs = 3
	for range runs {
		r := u.run(nil, []string{"LLMKEY_SDK_HELPER=1"}, "exec", "--", os.Args[0], "-test.run=^TestSDKHelper$", "-test.count=1")
		if strings.Count(r.stdout, "OK ") != sdkRequests {
			u.fatalf("SDK run: %v", r)
		}
	}
	seen := fake.requests()
	if len(seen) != runs*sdkRequests {
		u.fatalf("the fake saw %d requests, want %d", len(seen), runs*sdkRequests)
	}
	type id struct{ key, model string }
	want := map[id]tokens{}
	wantN := map[id]int64{}
	for _, s := range seen {
		model, tk := sdkUsage(s)
		k := id{names[s.credential()], model}
		sum := want[k]
		sum.add(tk)
		want[k] = sum
		wantN[k]++
	}
	if len(want) != 4 {
		u.fatalf("want both openai keys used: %v", wantN)
	}

	rep := u.usage()
	if rep.Source != "daemon" {
		t.Errorf("source %q: the daemon runs", rep.Source)
	}
	if len(rep.Rows) != len(want) {
		u.fatalf("usage rows %+v, want %d", rep.Rows, len(want))
	}
	var totalCost float64
	for _, r := range rep.Rows {
		k := id{r.Provider + "/" + r.Key, r.Model}
		if r.tokens() != want[k] || r.Requests != wantN[k] || r.Successes != wantN[k] || r.Partial != 0 || len(r.Failures) != 0 {
			t.Errorf("%v: got %d requests, %d ok, tokens %+v; want %d, tokens %+v", k, r.Requests, r.Successes, r.tokens(), wantN[k], want[k])
		}
		if len(r.Fingerprint) < 6 || strings.Contains(fmt.Sprint(r), "sk-") {
			t.Errorf("%v: fingerprint %q", k, r.Fingerprint)
		}
		tk := want[k]
		var cost float64
		switch r.Model {
		case "gpt-4o":
			cost = (float64(tk.In)*2.5 + float64(tk.Out)*10 + float64(tk.CacheRead)*1.25) / 1e6
		case "claude-x":
			cost = (float64(tk.In)*3 + float64(tk.Out)*15 + float64(tk.CacheRead)*0.3 + float64(tk.CacheWrite)*3.75) / 1e6
		default:
			if r.Cost != nil || len(r.Unpriced) != 1 || r.Unpriced[0] != "gemini-x" {
				t.Errorf("gemini-x has no price: its cost must be unknown, got %v %v", r.Cost, r.Unpriced)
			}
			continue
		}
		totalCost += cost
		if r.Cost == nil || math.Abs(*r.Cost-cost) > 1e-12 {
			t.Errorf("%v: cost %v, want %v", k, r.Cost, cost)
		}
	}
	if rep.Total.Requests != runs*sdkRequests || rep.Total.Cost != nil || len(rep.Unpriced) != 1 {
		t.Errorf("total: %+v, unpriced %v", rep.Total, rep.Unpriced)
	}

	// Grouped by model: the two openai keys add up.
	byModel := u.usage("--by", "model")
	for _, r := range byModel.Rows {
		var sum tokens
		var n int64
		for k, tk := range want {
			if k.model == r.Model {
				sum.add(tk)
				n += wantN[k]
			}
		}
		if r.tokens() != sum || r.Requests != n || r.Key != "" {
			t.Errorf("--by model %s: %+v, want %d requests %+v", r.Model, r, n, sum)
		}
	}
	if day := u.usage("--by", "day"); len(day.Rows) != 1 || day.Rows[0].Day != time.Now().UTC().Format("2006-01-02") {
		t.Errorf("--by day: %+v", day.Rows)
	}
	if future := u.usage("--since", "2099-01-01"); len(future.Rows) != 0 {
		t.Errorf("--since in the future: %+v", future.Rows)
	}
	text := mustSucceed(t, u.llmkey("usage")).stdout
	if !strings.Contains(text, "openai/home@") || !strings.Contains(text, "TOTAL") || !strings.Contains(text, "no price") {
		t.Errorf("usage table:\n%s", text)
	}
	// Piped, the table is whole: one word per cell, as many on every
	// line as headers, for awk.
	table, _, _ := strings.Cut(text, "\n\n")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	for _, l := range lines {
		if len(strings.Fields(l)) != len(strings.Fields(lines[0])) || strings.Contains(l, "…") || strings.Contains(l, "\x1b") {
			t.Errorf("piped usage: line %q has not the %d columns of %q", l, len(strings.Fields(lines[0])), lines[0])
		}
	}
	if r := u.llmkey("usage", "--by", "week"); r.code != 2 || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("--by week: %v", r)
	}

	time.Sleep(600 * time.Millisecond) // a write or two of the keeper
	for _, f := range []string{"usage.json", "usage-recent.json"} {
		u.assertNoCanary(readFile(t, filepath.Join(u.stateDir(), f)))
	}

	// list shows today's counts.
	list := mustSucceed(t, u.llmkey("list", "--json")).stdout
	var lo struct {
		Keys []struct {
			Provider, Name string
			RequestsToday  int `json:"requests_today"`
		}
	}
	json.Unmarshal([]byte(list), &lo)
	for _, k := range lo.Keys {
		var n int64
		for id, c := range wantN {
			if id.key == k.Provider+"/"+k.Name {
				n += c
			}
		}
		if int64(k.RequestsToday) != n {
			t.Errorf("list: %s/%s today %d, want %d", k.Provider, k.Name, k.RequestsToday, n)
		}
	}

	// /metrics, with the token, parses and agrees.
	env := u.proxyEnv()
	req, _ := http.NewRequest("GET", env["LLMKEY_URL"]+"/metrics", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("/metrics without the token: %v %v", resp, err)
	}
	req.Header.Set("Authorization", "Bearer "+env["LLMKEY_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	u.assertNoCanary(string(body))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses /metrics: %v", err)
	}
	for _, name := range []string{"llmkey_requests_total", "llmkey_tokens_total", "llmkey_key_state", "llmkey_in_flight",
		"llmkey_upstream_latency_seconds", "llmkey_state_write_failures_total"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	gotN := map[id]int64{}
	gotT := map[id]tokens{}
	for _, m := range fams["llmkey_requests_total"].GetMetric() {
		l := labels(m.GetLabel())
		if l["outcome"] != "success" {
			t.Errorf("outcome %v", l)
		}
		gotN[id{l["provider"] + "/" + l["key"], l["model"]}] += int64(m.GetCounter().GetValue())
	}
	for _, m := range fams["llmkey_tokens_total"].GetMetric() {
		l := labels(m.GetLabel())
		k := id{l["provider"] + "/" + l["key"], l["model"]}
		tk := gotT[k]
		v := int64(m.GetCounter().GetValue())
		switch l["type"] {
		case "input":
			tk.In += v
		case "output":
			tk.Out += v
		case "cache_read":
			tk.CacheRead += v
		case "cache_write":
			tk.CacheWrite += v
		case "reasoning":
			tk.Reasoning += v
		}
		gotT[k] = tk
	}
	for k := range want {
		if gotN[k] != wantN[k] || gotT[k] != want[k] {
			t.Errorf("/metrics %v: %d requests %+v; usage says %d %+v", k, gotN[k], gotT[k], wantN[k], want[k])
		}
	}
	if h := fams["llmkey_upstream_latency_seconds"].GetMetric(); len(h) == 0 || h[0].GetHistogram().GetSampleCount() == 0 {
		t.Errorf("latency histogram empty: %v", h)
	}
}

func labels(ls []*dto.LabelPair) map[string]string {
	m := map[string]string{}
	for _, l := range ls {
		m[l.GetName()] = l.GetValue()
	}
	return m
}

// streamWithUsage answers a chat request with n events gap apart and a
// last chunk that reports 5 input and 3 output tokens.
func streamWithUsage(n int, gap time.Duration) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range n {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%d\"}}],\"usage\":null}\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(gap)
		}
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n")
		return true
	}
}

// oneKey writes a keyfile with one openai key pointed at the fake and
// returns the proxy URL and token.
func (u *user) oneKey(fakeURL, secret string) (string, string) {
	u.t.Helper()
	writeFile(u.t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = %q\n",
		fakeURL+"/v1", secret), 0o600)
	env := u.proxyEnv()
	return env["LLMKEY_URL"], env["LLMKEY_TOKEN"]
}

func (u *user) chatN(t *testing.T, base, token string, n int) {
	t.Helper()
	for range n {
		mustOK(t, chat(t, base, token, nil))
	}
}

// A kill -9 a second after the last request loses nothing;
// nor does a stop right after it. A damaged usage file is set aside.
func TestUsageSurvivesKillAndStop(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	secret := u.canary("sk-a-")
	base, token := u.oneKey(fake.URL, secret)
	u.chatN(t, base, token, 20)
	time.Sleep(time.Second)
	pid := u.daemonPID()
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(t, pid)
	rep := u.usage() // from the file: the daemon is gone
	if rep.Source == "daemon" || rep.Total.Requests != 20 || rep.Total.In != 20*7 {
		t.Fatalf("after kill -9: source %s, %d requests, %d input tokens; want 20, 140", rep.Source, rep.Total.Requests, rep.Total.In)
	}

	base, token = u.oneKey(fake.URL, secret)
	u.chatN(t, base, token, 20)
	mustSucceed(t, u.llmkey("stop"))
	if rep := u.usage(); rep.Total.Requests != 40 || rep.Total.Successes != 40 {
		t.Fatalf("after stop: %+v", rep.Total)
	}
	// The daily budget goes on counting what was sent before the restart.
	u.proxyEnv()
	if k := u.keyStatus("openai", "a"); k["requests_today"] != float64(40) {
		t.Errorf("requests_today after a restart: %v", k["requests_today"])
	}
	mustSucceed(t, u.llmkey("stop"))

	// Torn files: set aside with a timestamp and a warning, never a
	// crash. The usage, the token and the keys disabled by hand.
	usagePath := filepath.Join(u.stateDir(), "usage-recent.json") // today's rows
	b := readFile(t, usagePath)
	writeFile(t, usagePath, b[:len(b)/2], 0o600)
	oldToken := u.token()
	writeFile(t, filepath.Join(u.stateDir(), "token"), oldToken[:10], 0o600)
	writeFile(t, filepath.Join(u.stateDir(), "disabled.json"), `{"openai/a": {`, 0o600)
	if r := u.llmkey("usage"); r.code != 1 || !strings.Contains(r.stderr, "damaged") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("usage of a damaged file without the daemon: %v", r)
	}
	u.proxyEnv()
	st, _ := u.status()
	notice, _ := st["state"].(map[string]any)["notice"].(string)
	aside, _ := filepath.Glob(usagePath + ".damaged-*")
	if len(aside) != 1 || !strings.Contains(notice, filepath.Base(aside[0])) {
		t.Fatalf("damaged file: set aside as %v, status notice %q", aside, notice)
	}
	if readFile(t, aside[0]) != b[:len(b)/2] {
		t.Error("the damaged file was not kept as it was")
	}
	for _, f := range []string{"token", "disabled.json"} {
		if kept, _ := filepath.Glob(filepath.Join(u.stateDir(), f+".damaged-*")); len(kept) != 1 || !strings.Contains(notice, filepath.Base(kept[0])) {
			t.Errorf("damaged %s: kept as %v; notice %q", f, kept, notice)
		}
	}
	if tok := u.token(); tok == oldToken || !strings.HasPrefix(tok, "llmk-local-") {
		t.Error("no new token after the old one was damaged")
	}
	if !strings.Contains(readFile(t, filepath.Join(u.stateDir(), "daemon.log")), "usage file is damaged") {
		t.Error("no warning in the log")
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still there", pid)
		}
	}
}

// The state dir removed under a load of 20 streams, then the
// runtime dir.
func TestStateAndRuntimeDirsRemovedUnderLoad(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	secret := u.canary("sk-a-")
	base, token := u.oneKey(fake.URL, secret)
	u.chatN(t, base, token, 1) // the usage file exists
	fake.on(secret, streamWithUsage(10, 200*time.Millisecond))
	pid := u.daemonPID()

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":true}`))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), "[DONE]") {
				errs <- fmt.Errorf("stream: %d %v %q", resp.StatusCode, err, b)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	removeAll(t, u.stateDir())
	removed := time.Now()
	files := []string{"usage.json", "usage-recent.json", "token", "daemon.log"}
	for _, f := range files {
		path := filepath.Join(u.stateDir(), f)
		for !exists(path) {
			if time.Since(removed) > time.Second {
				t.Fatalf("%s not back within a second of rm -rf", f)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("state files back %v after rm -rf", time.Since(removed).Round(time.Millisecond))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := strings.TrimSpace(readFile(t, filepath.Join(u.stateDir(), "token"))); got != token {
		t.Error("the token file came back with another token")
	}
	rep := u.usage()
	if rep.Total.Requests != 21 || rep.Total.Successes != 21 || rep.Total.In != 7+20*5 || rep.Total.Out != 7+20*3 {
		t.Errorf("totals after rm -rf: %+v", rep.Total)
	}
	// And on disk, once written.
	time.Sleep(600 * time.Millisecond)
	if b := readFile(t, filepath.Join(u.stateDir(), "usage-recent.json")); !strings.Contains(b, `"requests":21`) {
		t.Errorf("usage.json after rm -rf: %s", b)
	}

	// The runtime dir: the daemon puts its socket back.
	removeAll(t, u.runtimeDir())
	removed = time.Now()
	for {
		st, code := u.status()
		if code == 0 && st["pid"] == float64(pid) {
			break
		}
		if time.Since(removed) > 2*time.Second {
			t.Fatalf("status did not reach pid %d within 2s of rm -rf of the runtime dir: %d %v", pid, code, st["pid"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("status reached the same daemon %v after rm -rf", time.Since(removed).Round(time.Millisecond))
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	if n := u.countDaemons(); n != 1 {
		t.Errorf("%d daemons after rm -rf of the runtime dir, want 1", n)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// The state dir turned into a file, then back.
func TestStateDirReplacedByAFile(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, token := u.oneKey(fake.URL, u.canary("sk-a-"))
	u.chatN(t, base, token, 2)
	if _, code := u.status(); code != 0 {
		t.Fatal("not healthy to begin with")
	}
	// The daemon puts a removed dir back within moments: retry until the
	// file wins the race.
	for i := 0; ; i++ {
		os.RemoveAll(u.stateDir())
		if os.WriteFile(u.stateDir(), []byte("not a directory\n"), 0o600) == nil {
			break
		}
		if i == 100 {
			t.Fatal("could not put a file where the state dir is")
		}
	}
	u.chatN(t, base, token, 5)
	var r result
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r = u.llmkey("status")
		if r.code == 1 || time.Now().After(deadline) {
			break
		}
	}
	if r.code != 1 || !strings.Contains(r.stdout, "state not persisted since") || !strings.Contains(r.stdout, "not a directory") {
		t.Fatalf("status with the state dir a file: %v", r)
	}
	if rep := u.usage(); rep.Total.Requests != 7 {
		t.Errorf("usage in memory: %+v", rep.Total)
	}

	os.Remove(u.stateDir())
	os.Mkdir(u.stateDir(), 0o700)
	restored := time.Now()
	for {
		if r = u.llmkey("status"); r.code == 0 {
			break
		}
		if time.Since(restored) > 6*time.Second {
			t.Fatalf("status after the dir came back: %v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("healthy again %v after the dir came back", time.Since(restored).Round(time.Millisecond))
	if b := readFile(t, filepath.Join(u.stateDir(), "usage-recent.json")); !strings.Contains(b, `"requests":7`) {
		t.Errorf("usage.json after the outage: %s", b)
	}
	if !exists(filepath.Join(u.stateDir(), "token")) {
		t.Error("no token file after the outage")
	}
}

// bigStream answers with size bytes of chat events and a last usage chunk.
func bigStream(size int) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		event := []byte(`data: {"choices":[{"index":0,"delta":{"content":"` + strings.Repeat("x", 16<<10) + `"}}],"usage":null}` + "\n\n")
		for sent := 0; sent < size; sent += len(event) {
			if _, err := w.Write(event); err != nil {
				return true
			}
		}
		fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":51200}}\n\ndata: [DONE]\n\n")
		return true
	}
}

// procKB reads a field of /proc/PID/status, in kB.
func procKB(t testing.TB, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// A 200 MB streamed response passes through with the
// daemon's peak RSS less than 20 MB above what it was before.
func TestBigStreamInBoundedMemory(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	secret := u.canary("sk-a-")
	base, token := u.oneKey(fake.URL, secret)
	stream := func(size int) int64 {
		fake.on(secret, bigStream(size))
		req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":true}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream: %d %v after %d bytes", resp.StatusCode, err, n)
		}
		return n
	}
	stream(4 << 20) // warm up: buffers, connections
	pid := u.daemonPID()
	before := procKB(t, pid, "VmRSS")
	start := time.Now()
	n := stream(200 << 20)
	peak := procKB(t, pid, "VmHWM")
	t.Logf("%d MB in %v; daemon RSS before %d kB, peak %d kB (+%d kB)", n>>20, time.Since(start).Round(time.Millisecond), before, peak, peak-before)
	if n < 200<<20 {
		t.Fatalf("only %d bytes came through", n)
	}
	if peak-before >= 20<<10 {
		t.Errorf("the daemon's RSS grew by %d kB during a 200 MB stream, want < 20 MB", peak-before)
	}
	if rep := u.usage(); rep.Total.Out != 51200+51200 || rep.Total.Requests != 2 {
		t.Errorf("usage of the big streams: %+v", rep.Total)
	}
}

// An answer cut off mid-stream counts what it carried, as partial; and
// stream_usage = false leaves OpenAI chat streams as the client sent them.
func TestPartialStreamAndStreamUsageSwitch(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-ant-a-"), u.canary("sk-ant-b-")
	cut := func(w http.ResponseWriter, r *http.Request) bool {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":23,\"output_tokens\":1}}}\n\n")
		fmt.Fprint(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":4}}\n\n")
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	}
	fake.on(a, cut)
	fake.on(b, cut)
	base, token := u.twoKeys(fake.URL, "anthropic", "stream_usage = false", a, b)
	req, _ := http.NewRequest("POST", base+"/anthropic/v1/messages", strings.NewReader(`{"model":"claude-x","stream":true,"max_tokens":5}`))
	req.Header.Set("X-Api-Key", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Error("the client read a cut-off stream as complete")
	}
	rep := u.usage()
	if rep.Total.Requests != 1 || rep.Total.Partial != 1 || rep.Total.Successes != 0 || rep.Total.In != 23 || rep.Total.Out != 4 {
		t.Errorf("a cut-off stream: %+v", rep.Total)
	}

	// With stream_usage = false, nothing is added: the fake then sends
	// no usage, and none is counted.
	var body string
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\nstream_usage = false\n\n[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = %q\n", fake.URL+"/v1", a), 0o600)
	mustSucceed(t, u.llmkey("reload"))
	fake.on(a, func(w http.ResponseWriter, r *http.Request) bool {
		bb, _ := io.ReadAll(r.Body)
		body = string(bb)
		r.Body = io.NopCloser(strings.NewReader(body))
		return false
	})
	req, _ = http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+token)
	mustOK(t, mustDo(t, req))
	if body != `{"model":"gpt-4o","stream":true}` {
		t.Errorf("stream_usage = false: the body changed to %s", body)
	}
	for _, r := range u.usage().Rows {
		if r.Model == "gpt-4o" && (r.Requests != 1 || r.In != 0) {
			t.Errorf("stream without usage: %+v", r)
		}
	}
}

func mustDo(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// An exec right after the runtime dir was removed, before the daemon has
// put its socket back, reaches that daemon rather than failing on its
// port or starting a second one.
func TestExecRightAfterRuntimeDirRemoved(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().String()
	ln.Close()
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = %q\n\n[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = %q\n",
		port, fake.URL+"/v1", u.canary("sk-a-")), 0o600)
	mustSucceed(t, u.llmkey("start"))
	pid := u.daemonPID()
	os.RemoveAll(u.runtimeDir())
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	if st, code := u.status(); code != 0 || st["pid"] != float64(pid) {
		t.Errorf("after exec: status %d pid %v, want the same daemon %d", code, st["pid"], pid)
	}
	if n := u.countDaemons(); n != 1 {
		t.Errorf("%d daemons", n)
	}
}

// The runtime dir removed, and the lock in the one put back taken by
// another daemon before this one's keeper got to it: a daemon the CLI
// spawned in that moment, which cannot serve since this one holds the
// state dir's lock, and exits. This daemon waits for the lock instead of
// stepping aside (it used to stop, and then no daemon served at all).
func TestRuntimeDirLockTakenForAMoment(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	pid := u.daemonPID()
	os.RemoveAll(u.runtimeDir())
	if err := os.MkdirAll(u.runtimeDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(u.runtimeDir(), "daemon.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the keeper finds it taken
	f.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, code := u.status(); code == 0 && st["pid"] == float64(pid) {
			break
		}
		if time.Now().After(deadline) {
			st, code := u.status()
			t.Fatalf("the daemon did not serve again after the lock was let go: status %d %v", code, st)
		}
	}
	if n := u.countDaemons(); n != 1 {
		t.Errorf("%d daemons", n)
	}
}

// removeAll is rm -rf of a dir the daemon may be writing in (and putting
// back) at the same moment.
func removeAll(t *testing.T, dir string) {
	t.Helper()
	var err error
	for range 20 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal(err)
}

// A model name with terminal escapes in it is stored and printed without
// them: usage shows U+FFFD where the escape was.
func TestModelNamesCannotDriveTheTerminal(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, token := u.oneKey(fake.URL, u.canary("sk-"))
	req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"gpt\u001b[2J\u001b]0;owned\u0007","messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r := mustSucceed(t, u.llmkey("usage", "--by", "model"))
	if strings.ContainsAny(r.stdout, "\x1b\x07") || !strings.Contains(r.stdout, "gpt\uFFFD[2J") {
		t.Errorf("usage printed a control character, or lost the model:\n%q", r.stdout)
	}
}
