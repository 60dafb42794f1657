// SPDX-License-Identifier: MIT

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// The views of what happened: top's summary, last hour and paging, the
// refusals in the ledger, dollar budgets, usage's bars and the short log,
// end to end through the built daemon.

// scopedToken is a token the daemon serves with the one key ref only.
func (u *user) scopedToken(ref string) string {
	u.t.Helper()
	r := mustSucceed(u.t, u.llmkey("env", "--key", ref, "--shell", "json"))
	var m map[string]*string
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m["LLMKEY_TOKEN"] == nil {
		u.fatalf("env --key %s: %v\n%s", ref, err, r.stdout)
	}
	return *m["LLMKEY_TOKEN"]
}

// history is the daemon's GET /v1/history.
func (u *user) history() (h struct {
	At        time.Time
	Providers map[string]struct {
		Refused []int
		Keys    []struct {
			Name     string
			Requests []int
			Aside    string
		}
	}
}) {
	u.t.Helper()
	ctl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(u.runtimeDir(), "sock"))
	}}}
	resp, err := ctl.Get("http://llmkey/v1/history")
	if err != nil {
		u.fatalf("GET /v1/history: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		u.fatalf("GET /v1/history: %v", err)
	}
	return h
}

var rateLimited = answer(429, map[string]string{"Retry-After": "600"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)

// topTerm is top running in a real 80x24 terminal.
type topTerm struct {
	t  *testing.T
	tm *tmuxTerm
}

func startTop(t *testing.T, u *user) *topTerm {
	tm := newTmux(t, u)
	tm.tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "top", "sh", "-c", shellQuote(llmkeyBin)+" top; echo __END__; sleep 600")
	return &topTerm{t: t, tm: tm}
}

// screen is what top shows, without colours; never more than 80x24.
func (tt *topTerm) screen() string {
	sc := plain(tt.tm.tmux("capture-pane", "-p", "-e", "-t", "top"))
	lines := strings.Split(strings.TrimRight(sc, "\n"), "\n")
	if len(lines) > 24 {
		tt.t.Errorf("top drew %d lines in a terminal of 24", len(lines))
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			tt.t.Errorf("top drew a line of %d columns: %q", n, l)
		}
	}
	return sc
}

// wait is the screen once ok accepts it, within 10 s.
func (tt *topTerm) wait(what string, ok func(string) bool) string {
	tt.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if sc := tt.screen(); ok(sc) {
			return sc
		} else if time.Now().After(deadline) {
			tt.t.Fatalf("top never showed %s:\n%s", what, sc)
		}
	}
}

// topRow is the words of the key's row on the screen sc.
func topRow(sc, name string) []string {
	for _, l := range strings.Split(sc, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == name {
			return f
		}
	}
	return nil
}

// thirtyOneKeys writes a keyfile of 31 openai keys, k00 to k30, of which
// k29 answers 429, and returns the proxy's URL.
func thirtyOneKeys(t *testing.T, u *user) string {
	fake := newFakeProvider(t)
	keys := make([][3]string, 31)
	for i := range keys {
		keys[i] = [3]string{fmt.Sprintf("openai/k%02d", i), u.canary(fmt.Sprintf("sk-%02d-", i)), ""}
	}
	fake.on(keys[29][1], rateLimited)
	base, _ := u.keysFile(`max_wait = "0s"`, fmt.Sprintf("[provider.openai]\nbase_url = %q\n", fake.URL+"/v1"), keys...)
	return base
}

// With 31 keys in a real 80x24 terminal, top shows the one cooling with
// the minute it cooled marked, a summary line with the counts, a line
// that says how many keys are below, and every key by paging; a key
// without limits counts its last minute; a burst two minutes ago shows in
// its key's last hour.
func TestTopWithThirtyOneKeys(t *testing.T) {
	u := newUser(t)
	base := thirtyOneKeys(t, u)
	burst := u.scopedToken("openai/k00")
	for range 12 {
		mustOK(t, chat(t, base, burst, nil))
	}
	burstAt := u.history().At
	chat(t, base, u.scopedToken("openai/k29"), nil).Body.Close() // 429: it cools for 10 minutes
	if k := u.keyStatus("openai", "k00"); k["requests_last_minute"] != 12.0 {
		t.Errorf("k00, without limits, after 12 requests: %v in the last minute", k["requests_last_minute"])
	}

	tt := startTop(t, u)
	sc := tt.wait("the cooling key", func(sc string) bool { f := topRow(sc, "k29"); return len(f) > 1 && f[1] == "cooling" })
	for _, want := range []string{"ready 30", "cooling 1", "parked 0", "limited 0", "refused 1 in 5m", "today $", "more ↓", "set aside"} {
		if !strings.Contains(sc, want) {
			t.Errorf("the first screen lacks %q:\n%s", want, sc)
		}
	}
	seen := map[string]bool{}
	for range 6 {
		for _, l := range strings.Split(tt.screen(), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				seen[f[0]] = true
			}
		}
		tt.tm.tmux("send-keys", "-t", "top", "PageDown")
		time.Sleep(300 * time.Millisecond)
	}
	for i := range 31 {
		if name := fmt.Sprintf("k%02d", i); !seen[name] {
			t.Errorf("%s never shown while paging down", name)
		}
	}
	tt.tm.tmux("send-keys", "-t", "top", "Home")

	// Two minutes after the burst, by the daemon's clock.
	for u.history().At.Unix()/60 < burstAt.Unix()/60+2 {
		time.Sleep(time.Second)
	}
	h := u.history()
	k00 := h.Providers["openai"].Keys[0]
	at := len(k00.Requests) - 1 - int(h.At.Unix()/60-burstAt.Unix()/60) // the burst's minute
	if k00.Name != "k00" || at > len(k00.Requests)-3 || k00.Requests[at]+k00.Requests[at-1] != 12 || k00.Requests[len(k00.Requests)-1] != 0 {
		t.Errorf("k00's last hour, the burst %d minutes ago: %+v", len(k00.Requests)-1-at, k00)
	}
	sc = tt.wait("k00's burst", func(sc string) bool {
		f := topRow(sc, "k00")
		return len(f) > 0 && strings.Contains(f[len(f)-1], "█")
	})
	tt.tm.tmux("send-keys", "-t", "top", "q")
	tt.wait("its exit after q", func(sc string) bool { return strings.Contains(sc, "__END__") })
	u.assertNoCanary(sc)
}

// refusedRows are usage --json's rows with what they refused.
type refusedRows struct {
	Source string
	Rows   []struct {
		Provider, Key, Model string
		Requests             int64
		Refused              map[string]int64
	}
}

// After a storm of requests llmkey refused and a kill -9 of the daemon,
// usage still counts them by day and key: under the key a conversation
// could only go to, and under the provider when no key could serve.
func TestRefusalsSurviveAKill(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-a-"), u.canary("sk-b-")
	base, token := u.keysFile(`max_wait = "0s"`, fmt.Sprintf("[provider.openai]\nbase_url = %q\n", fake.URL+"/v1"),
		[3]string{"openai/a", a, ""}, [3]string{"openai/b", b, ""})
	onA := u.scopedToken("openai/a")
	resp, got := post(t, base, onA, "/openai/responses", `{"model":"gpt-4o","input":"hello"}`, nil)
	if resp.StatusCode != 200 || !strings.Contains(got, "resp_1") {
		t.Fatalf("a response on a: %d %s", resp.StatusCode, got)
	}
	fake.on(a, rateLimited)
	fake.on(b, rateLimited)
	chat(t, base, onA, nil).Body.Close() // a cools
	// The conversation lives with a, which is cooling: refused, a's.
	resp, got = post(t, base, token, "/openai/responses", `{"model":"gpt-4o","input":"more","previous_response_id":"resp_1"}`, nil)
	if resp.Header.Get("X-Llmkey-Error") != "conversation-key-busy" {
		t.Fatalf("the conversation's turn: %d %s %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), got)
	}
	// The storm: b cools on the first, the rest find every key cooling.
	for range 20 {
		resp := chat(t, base, token, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a request of the storm: %d", resp.StatusCode)
		}
	}
	time.Sleep(time.Second) // the ledger's promise: a kill -9 a second later loses nothing
	pid := u.daemonPID()
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(t, pid)

	r := mustSucceed(t, u.llmkey("usage", "--json", "--by", "day,key,model"))
	var rep refusedRows
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var provider, keyA int64
	for _, row := range rep.Rows {
		switch {
		case row.Key == "" && row.Provider == "openai" && row.Model == "gpt-4o":
			provider = row.Refused["all-keys-cooling"]
		case row.Key == "a":
			keyA += row.Refused["conversation-key-busy"]
		}
	}
	// The chat on a alone, then the storm's 20.
	if rep.Source == "daemon" || provider != 21 || keyA != 1 {
		t.Errorf("after kill -9 (from %s): %d refused with no key, %d on a's conversation; want 21 and 1\n%s", rep.Source, provider, keyA, r.stdout)
	}
	table := mustSucceed(t, u.llmkey("usage", "--by", "key"))
	if !strings.Contains(table.stdout, "REFUSED") || !strings.Contains(table.stdout, "openai (no key)") {
		t.Errorf("usage --by key:\n%s", table.stdout)
	}
	u.assertNoCanary(r.stdout + table.stdout)
}

// A key with budget_usd_day = 0.0001 is limited once its answers cost
// that, status says why and what it spent, it stays limited across a
// restart; a budget that served a model without a price is a problem.
func TestDollarBudgetOfAKey(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, _ := u.keysFile(`max_wait = "0s"`, fmt.Sprintf("[provider.openai]\nbase_url = %q\n", fake.URL+"/v1"),
		[3]string{"openai/personal", u.canary("sk-p-"), "budget_usd_day = 0.0001"},
		[3]string{"openai/work", u.canary("sk-w-"), "budget_usd_month = 50"})
	personal := u.scopedToken("openai/personal")
	// gpt-4o at its built-in price: 7 input, 4 cached, 7 output tokens
	// cost $0.0000925; two cost more than the budget.
	for range 2 {
		mustOK(t, chat(t, base, personal, nil))
	}
	resp := chat(t, base, personal, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-Llmkey-Error") != "all-keys-cooling" {
		t.Errorf("a third request on the spent key: %d %s", resp.StatusCode, resp.Header.Get("X-Llmkey-Error"))
	}
	check := func(when string) {
		t.Helper()
		k := u.keyStatus("openai", "personal")
		reason, _ := k["reason"].(string)
		if k["state"] != "limited" || !strings.Contains(reason, "over its daily budget: spent $0.000185 of $0.0001 today (UTC)") ||
			k["cost_today_usd"] != 0.000185 || k["budget_usd_day"] != 0.0001 {
			t.Errorf("%s: %v", when, k)
		}
	}
	check("after two requests")
	if r := u.llmkey("status"); !strings.Contains(r.stdout, "daily budget") || !strings.Contains(r.stdout, "$0.0002/0.0001") {
		t.Errorf("status:\n%s", r.stdout)
	}
	mustSucceed(t, u.llmkey("stop"))
	base = u.proxyEnv()["LLMKEY_URL"] // listen = 127.0.0.1:0: another port
	check("after a restart")

	mustOK(t, chatModel(t, base, u.scopedToken("openai/work"), "mystery-model"))
	st, code := u.status()
	problems := fmt.Sprint(st["problems"])
	if code != 1 || !strings.Contains(problems, "openai/work served mystery-model today, which has no price") {
		t.Errorf("a budget blind to a model: exit %d, problems %s", code, problems)
	}
}

// usage --by day and --by key draw bars on an 80-column terminal and
// none in a pipe; no line is wider than the terminal, the note of a
// model without a price included.
func TestUsageBarsInATerminal(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, _ := u.keysFile("", fmt.Sprintf("[provider.openai]\nbase_url = %q\n", fake.URL+"/v1"),
		[3]string{"openai/work", u.canary("sk-w-"), ""}, [3]string{"openai/personal", u.canary("sk-p-"), ""})
	work, personal := u.scopedToken("openai/work"), u.scopedToken("openai/personal")
	for i := range 5 {
		mustOK(t, chatModel(t, base, work, "gpt-4o"))
		if i < 2 {
			mustOK(t, chatModel(t, base, personal, "an-unpriced-model-whose-name-goes-on-and-on-for-a-while"))
		}
	}
	tm := newTmux(t, u)
	for _, by := range []string{"day", "key"} {
		text := plain(tm.run("", "usage", "--by", by))
		if !strings.ContainsAny(text, "█▏▎▍▌▋▊▉") || !strings.Contains(text, map[string]string{"day": "TREND", "key": "SHARE"}[by]) {
			t.Errorf("usage --by %s on a terminal draws no bars:\n%s", by, text)
		}
		if !strings.Contains(text, "no price for an-unpriced-model") {
			t.Errorf("usage --by %s: no note of the model without a price:\n%s", by, text)
		}
		for _, l := range strings.Split(text, "\n") {
			if n := utf8.RuneCountInString(l); n > 80 {
				t.Errorf("usage --by %s: a line of %d columns: %q", by, n, l)
			}
		}
		piped := mustSucceed(t, u.llmkey("usage", "--by", by)).stdout
		if strings.ContainsAny(piped, "█▏▎▍▌▋▊▉") || strings.Contains(piped, "TREND") || strings.Contains(piped, "SHARE") {
			t.Errorf("usage --by %s in a pipe draws bars:\n%s", by, piped)
		}
	}
	if text := plain(tm.run("", "usage", "--by", "day", "--chart")); !strings.Contains(text, "spend per day") || !strings.Contains(text, "└") {
		t.Errorf("usage --chart:\n%s", text)
	}
}

// logs -f on an 80-column terminal prints short lines that fit and
// colours their levels; --raw there, and a pipe, print the logfmt lines.
func TestLogsOnATerminal(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, token := u.keysFile("", fmt.Sprintf("[provider.openai]\nbase_url = %q\n", fake.URL+"/v1"),
		[3]string{"openai/work", u.canary("sk-w-"), ""})
	for range 3 {
		mustOK(t, chatModel(t, base, token, "gpt-4o-mini-2024-07-18-with-a-long-name"))
	}
	tm := newTmux(t, u)
	tm.tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", "logs", "sh", "-c", shellQuote(llmkeyBin)+" logs -f; echo __END__; sleep 600")
	var sc string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		sc = tm.tmux("capture-pane", "-p", "-e", "-J", "-S", "-", "-t", "logs")
		if strings.Contains(plain(sc), "openai/work request") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs -f never showed the requests:\n%s", plain(sc))
		}
	}
	for _, l := range strings.Split(plain(sc), "\n") {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("logs -f: a line of %d columns: %q", n, l)
		}
	}
	if !strings.Contains(sc, "\x1b[32mINF") || strings.Contains(plain(sc), "level=INFO") {
		t.Errorf("logs -f on a terminal: levels not coloured, or raw lines:\n%q", sc)
	}
	tm.tmux("send-keys", "-t", "logs", "C-c")
	for _, env := range []string{"NO_COLOR=1", "TERM=dumb"} {
		if sc := tm.run(env, "logs", "-n", "20"); strings.Contains(sc, "\x1b[3") || !strings.Contains(sc, "INF") {
			t.Errorf("%s llmkey logs: %q", env, sc)
		}
	}
	if raw := plain(tm.run("", "logs", "--raw", "-n", "20")); !strings.Contains(raw, "level=INFO msg=request") {
		t.Errorf("logs --raw on a terminal:\n%s", raw)
	}
	piped := mustSucceed(t, u.llmkey("logs", "--level", "info", "--key", "openai/work")).stdout
	if !strings.Contains(piped, "level=INFO msg=request") || strings.Contains(piped, "msg=ready") || strings.Contains(piped, "\x1b") {
		t.Errorf("logs --key in a pipe:\n%s", piped)
	}
	u.assertNoCanary(sc + piped)
}
