// SPDX-License-Identifier: MIT

package main

// The performance harness: the built llmkey against the fake
// upstream direct and a bare net/http/httputil.ReverseProxy, on loopback,
// sharing the machine's cores with the load generator. Not part of the
// test run; run it with
//
//	go test -run XXX -bench Harness -benchtime 1x .
//
// It prints one table: each measurement with its target.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/llmkey/llmkey/daemon/proxy"
	"github.com/llmkey/llmkey/daemon/proxy/bare"
	"github.com/llmkey/llmkey/rotate"
)

const (
	harnessChat  = `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
	harnessBody  = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	harnessConns = 32
	// harnessFirstStreams is how many short streams time the first byte,
	// per target: a p99 of 3,000 is the 30th slowest, not the 3rd.
	harnessFirstStreams = 3000
	// harnessRounds is how many 3 s loads each target takes.
	harnessRounds = 5
)

// harnessUpstream is the fake provider of the harness. A chat request
// gets a small JSON answer. A stream request gets, by its model:
// "first": one event and the end; "tick": 20 events 5 ms apart, each
// carrying the time it was sent; "hold": one event, then nothing until
// release is closed; "big": 200 MB.
func harnessUpstream(release chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			harnessSocket(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, harnessChat)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		if strings.Contains(string(body), `"big"`) {
			event := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"" + strings.Repeat("x", 16<<10) + "\"}}]}\n\n")
			for sent := 0; sent < 200<<20; sent += len(event) {
				w.Write(event)
			}
			return
		}
		if strings.Contains(string(body), `"first"`) {
			io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")
			f.Flush()
			io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		if strings.Contains(string(body), `"hold"`) {
			io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")
			f.Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		for range 20 {
			fmt.Fprintf(w, "data: {\"sent\":%d}\n\n", time.Now().UnixNano())
			f.Flush()
			time.Sleep(5 * time.Millisecond)
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
}

// harnessSocket is the harness's WebSocket upstream: to "tick" it sends
// 20 messages 5 ms apart, each carrying the time it was sent; to "hold"
// nothing, until the client closes.
func harnessSocket(w http.ResponseWriter, r *http.Request) {
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if string(msg) != "tick" {
			continue
		}
		for range 20 {
			c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"response.output_text.delta","sent":%d}`, time.Now().UnixNano())))
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// socketDelays is the delay of each message of n "tick" rounds over one
// WebSocket to url.
func socketDelays(url, token string, n int) ([]time.Duration, error) {
	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []time.Duration
	for range n {
		c.WriteMessage(websocket.TextMessage, []byte("tick"))
		for range 20 {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return out, err
			}
			now := time.Now().UnixNano()
			var ev struct{ Sent int64 }
			json.Unmarshal(msg, &ev)
			out = append(out, time.Duration(now-ev.Sent))
		}
	}
	slices.Sort(out)
	return out, nil
}

// ctxSwitches is the sum of the context switches of every thread of pid.
func ctxSwitches(b *testing.B, pid int) int64 {
	var total int64
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			name, value, ok := strings.Cut(line, ":")
			if ok && (name == "voluntary_ctxt_switches" || name == "nonvoluntary_ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
				total += n
			}
		}
	}
	return total
}

// runBareProxy is the reference, bare.Proxy, in a process of its
// own like llmkey. It prints its address and serves until killed.
func runBareProxy(upstream string) {
	target, _ := url.Parse(upstream)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	http.Serve(ln, bare.Proxy(target, "Bearer sk-bare-reference", proxy.NewTransport()))
}

type loadResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

// load sends small chat requests over conns connections for d.
func load(base, token string, conns int, d time.Duration) loadResult {
	tr := &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var errs atomic.Int64
	lats := make([][]time.Duration, conns)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(harnessBody))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lats...)
	slices.Sort(all)
	return loadResult{rps: float64(len(all)) / elapsed.Seconds(), p50: pct(all, 50), p99: pct(all, 99), errors: errs.Load()}
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// streamTimes sends n streams of model ("first" or "tick") one after
// another and returns the times to the first byte and every event's delay
// (received - sent).
func streamTimes(client *http.Client, base, token, model string, n int) (ttfb, delay []time.Duration) {
	for range n {
		req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"`+model+`","stream":true}`))
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		br := bufio.NewReader(resp.Body)
		first := true
		for {
			line, err := br.ReadString('\n')
			if first && len(line) > 0 {
				ttfb = append(ttfb, time.Since(t0))
				first = false
			}
			if v, ok := strings.CutPrefix(line, `data: {"sent":`); ok {
				sent, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), "}"), 10, 64)
				delay = append(delay, time.Since(time.Unix(0, sent)))
			}
			if err != nil {
				break
			}
		}
		resp.Body.Close()
	}
	slices.Sort(ttfb)
	slices.Sort(delay)
	return ttfb, delay
}

// median times fn over n runs.
func median(n int, fn func()) time.Duration {
	var ds []time.Duration
	for range n {
		t0 := time.Now()
		fn()
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func BenchmarkHarness(b *testing.B) {
	if raceEnabled {
		b.Skip("the harness measures the real binary: run it without -race")
	}
	b.StopTimer()
	release := make(chan struct{})
	up := httptest.NewServer(harnessUpstream(release))
	defer up.Close()
	defer close(release)

	// The bare reference, in a process of its own.
	bare := exec.Command(os.Args[0], "-test.run=XXX")
	bare.Env = append(os.Environ(), "LLMKEY_BARE_PROXY="+up.URL)
	out, _ := bare.StdoutPipe()
	if err := bare.Start(); err != nil {
		b.Fatal(err)
	}
	defer bare.Process.Kill()
	addr, _ := bufio.NewReader(out).ReadString('\n')
	bareURL := "http://" + strings.TrimSpace(addr)

	u := newUser(b)
	secret := "sk-proj-harness" + strings.Repeat("x", 24)
	writeFile(b, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\nmax_websockets = 1000\n\n[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = %q\n",
		up.URL+"/v1", secret), 0o600)
	env := u.proxyEnv()
	lk, token := env["LLMKEY_URL"], env["LLMKEY_TOKEN"]
	pid := u.daemonPID()

	var rows [][3]string
	row := func(what, measured, target string) {
		rows = append(rows, [3]string{what, measured, target})
		fmt.Printf("  %-58s %-44s %s\n", what, measured, target)
	}
	fmt.Printf("\nllmkey performance harness (GOMAXPROCS %s, %d-connection loads of 3 s, %d rounds)\n", os.Getenv("GOMAXPROCS"), harnessConns, harnessRounds)

	// Throughput and latency: rounds of direct, bare and llmkey, bare and
	// llmkey taking turns to go first. Each ratio is the median of the
	// rounds' ratios, so that a change in the machine's load between
	// rounds does not count against either.
	load(lk, token, harnessConns, time.Second) // warm up
	load(bareURL, token, harnessConns, time.Second)
	var rounds [][3]loadResult // direct, bare, llmkey
	for i := range harnessRounds {
		var r [3]loadResult
		order := []int{0, 1, 2}
		if i%2 == 1 {
			order = []int{0, 2, 1}
		}
		for _, t := range order {
			// The fake answers any path, so direct is its root.
			r[t] = load([]string{up.URL, bareURL, lk}[t], token, harnessConns, 3*time.Second)
		}
		rounds = append(rounds, r)
	}
	medianOf := func(f func(r [3]loadResult) float64) (float64, []string) {
		var vs []float64
		var each []string
		for _, r := range rounds {
			vs = append(vs, f(r))
			each = append(each, fmt.Sprintf("%.2f", f(r)))
		}
		slices.Sort(vs)
		return vs[len(vs)/2], each
	}
	for t, name := range []string{"fake upstream direct", "bare httputil.ReverseProxy", "llmkey"} {
		rps, _ := medianOf(func(r [3]loadResult) float64 { return r[t].rps })
		p50, _ := medianOf(func(r [3]loadResult) float64 { return float64(r[t].p50) })
		p99, _ := medianOf(func(r [3]loadResult) float64 { return float64(r[t].p99) })
		errs := 0
		for _, r := range rounds {
			errs += int(r[t].errors)
		}
		fmt.Printf("  %-28s %8.0f req/s  p50 %-9v p99 %-9v errors %d (medians of %d rounds)\n", name, rps,
			time.Duration(p50).Round(time.Microsecond), time.Duration(p99).Round(time.Microsecond), errs, len(rounds))
	}
	rps, rpsEach := medianOf(func(r [3]loadResult) float64 { return r[2].rps / r[1].rps })
	p50, p50Each := medianOf(func(r [3]loadResult) float64 { return float64(r[2].p50) / float64(r[1].p50) })
	row("throughput, small chat, 32 connections (llmkey/bare)", fmt.Sprintf("%.2f x (rounds: %s)", rps, strings.Join(rpsEach, " ")), ">= 0.90 x")
	row("p50 latency, same load (llmkey/bare)", fmt.Sprintf("%.2f x (rounds: %s)", p50, strings.Join(p50Each, " ")), "<= 1.15 x")

	// Streaming: time to first byte (of short streams, so that a p99 has
	// samples enough) and per-event delay (of 20-event streams), direct,
	// through the bare proxy and through llmkey in turn. One client, so
	// connections are reused.
	stc := &http.Client{Transport: &http.Transport{}}
	streamTimes(stc, lk, token, "first", 50)
	streamTimes(stc, bareURL, token, "first", 50)
	var dTTFB, dDelay, bTTFB, lTTFB, lDelay []time.Duration
	for range harnessFirstStreams {
		t, _ := streamTimes(stc, up.URL, token, "first", 1)
		dTTFB = append(dTTFB, t...)
		t, _ = streamTimes(stc, bareURL, token, "first", 1)
		bTTFB = append(bTTFB, t...)
		t, _ = streamTimes(stc, lk, token, "first", 1)
		lTTFB = append(lTTFB, t...)
	}
	for range 100 {
		_, d := streamTimes(stc, up.URL, token, "tick", 1)
		dDelay = append(dDelay, d...)
		_, d = streamTimes(stc, lk, token, "tick", 1)
		lDelay = append(lDelay, d...)
	}
	for _, s := range [][]time.Duration{dTTFB, dDelay, bTTFB, lTTFB, lDelay} {
		slices.Sort(s)
	}
	added := func(through []time.Duration, p int) time.Duration {
		return (pct(through, p) - pct(dTTFB, p)).Round(time.Microsecond)
	}
	row("added time to first streamed byte (p50 / p99)", fmt.Sprintf("%v / %v (bare: %v / %v)", added(lTTFB, 50), added(lTTFB, 99),
		added(bTTFB, 50), added(bTTFB, 99)), "< 1 ms p99")
	dist := func(s []time.Duration) string {
		var parts []string
		for _, p := range []int{50, 90, 99} {
			parts = append(parts, pct(s, p).Round(time.Microsecond).String())
		}
		return strings.Join(parts, " / ")
	}
	fmt.Printf("  (first byte p50 / p90 / p99 of %d: direct %s; bare %s; llmkey %s)\n", len(lTTFB), dist(dTTFB), dist(bTTFB), dist(lTTFB))
	row("per-event delay through llmkey (p50 / p99; direct)", fmt.Sprintf("%v / %v (%v / %v)", pct(lDelay, 50).Round(time.Microsecond), pct(lDelay, 99).Round(time.Microsecond),
		pct(dDelay, 50).Round(time.Microsecond), pct(dDelay, 99).Round(time.Microsecond)), "as sent, never batched")

	// Key selection, in-process (as rotate's BenchmarkTake).
	for _, strategy := range rotate.Strategies() {
		specs := make([]rotate.KeySpec, 1000)
		for i := range specs {
			specs[i] = rotate.KeySpec{Name: fmt.Sprint("k", i), Fingerprint: fmt.Sprint(i)}
		}
		p := rotate.NewPool("openai", wallClock{})
		p.Update(rotate.Policy{Strategy: strategy}, specs)
		pick := func() {
			l, _ := p.Take(rotate.Ask{Model: "gpt-4o"})
			l.Done(rotate.Outcome{Class: rotate.Success}, rotate.Spend{Tokens: 10})
		}
		// testing.Benchmark would wait for this benchmark to end: time
		// it by hand, and count allocations with AllocsPerRun.
		const n = 20000
		t0 := time.Now()
		for range n {
			pick()
		}
		per := time.Since(t0) / n
		row("key selection, 1000 keys, "+string(strategy), fmt.Sprintf("%v, %.0f allocs", per, testing.AllocsPerRun(1000, pick)), "< 1 µs, 0 allocs")
	}

	// A 200 MB stream: peak RSS over what it was before.
	before := procKB(b, pid, "VmRSS")
	req, _ := http.NewRequest("POST", lk+"/openai/chat/completions", strings.NewReader(`{"model":"big","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		var peak atomic.Int64
		done := make(chan struct{})
		go func() { // sample, since an earlier load may have set the high-water mark
			for {
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
					peak.Store(max(peak.Load(), int64(procKB(b, pid, "VmRSS"))))
				}
			}
		}()
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		close(done)
		row(fmt.Sprintf("RSS growth over a %d MB stream (peak - before)", n>>20), fmt.Sprintf("%d kB (%d -> %d kB)", peak.Load()-int64(before), before, peak.Load()), "< 20 MB")
	}

	// Memory per open stream, through llmkey and through the bare proxy.
	perStream := func(base string, pid int, profile func()) (float64, int, int, int, int) {
		before := procKB(b, pid, "VmRSS")
		const streams = 1000
		tr := &http.Transport{MaxIdleConnsPerHost: streams}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		var opened sync.WaitGroup
		var bodies []io.Closer
		var mu sync.Mutex
		openErrs := 0
		for range streams {
			opened.Add(1)
			go func() {
				defer opened.Done()
				req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"hold","stream":true}`))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || resp.StatusCode != 200 {
					openErrs++
					return
				}
				buf := make([]byte, 64)
				resp.Body.Read(buf)
				bodies = append(bodies, resp.Body)
			}()
		}
		opened.Wait()
		time.Sleep(200 * time.Millisecond)
		during := procKB(b, pid, "VmRSS")
		if profile != nil {
			profile()
		}
		for _, c := range bodies {
			c.Close()
		}
		return float64(during-before) / float64(max(len(bodies), 1)), len(bodies), openErrs, before, during
	}
	profile := func() {
		if os.Getenv("LLMKEY_HARNESS_PROFILE") == "" {
			return
		}
		// What the memory is: the daemon's memstats, heap and goroutine
		// profiles with the streams open, from its control socket.
		sock := filepath.Join(u.runtimeDir(), "sock")
		ctl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		for _, p := range []string{"/debug/memstats", "/debug/pprof/heap?gc=1&debug=1", "/debug/pprof/goroutine?debug=1"} {
			resp, err := ctl.Get("http://llmkey" + p)
			if err != nil {
				continue
			}
			bb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			name := filepath.Join(os.TempDir(), "llmkey-streams"+strings.NewReplacer("/", "-", "?", "-", "=", "").Replace(p)+".txt")
			os.WriteFile(name, bb, 0o644)
			fmt.Printf("  (profile: %s)\n", name)
		}
	}
	bkib, _, _, _, _ := perStream(bareURL, bare.Process.Pid, nil)
	kib, n, fails, before, during := perStream(lk, pid, profile)
	row(fmt.Sprintf("memory per open stream (%d streams, %d failed)", n, fails),
		fmt.Sprintf("%.1f KiB (RSS %d -> %d kB; bare: %.1f KiB)", kib, before, during, bkib), "< 64 KiB")

	// WebSockets: the delay each message takes through llmkey against
	// direct, and the memory an open one holds.
	wsDirect := strings.Replace(up.URL, "http", "ws", 1) + "/v1/responses"
	wsLlmkey := strings.Replace(lk, "http", "ws", 1) + "/openai/responses"
	dWS, err1 := socketDelays(wsDirect, token, 100)
	lWS, err2 := socketDelays(wsLlmkey, token, 100)
	if err1 != nil || err2 != nil {
		b.Fatalf("WebSocket rounds: %v %v", err1, err2)
	}
	row("WebSocket message delay through llmkey (p50 / p99; direct)", fmt.Sprintf("%v / %v (%v / %v)",
		pct(lWS, 50).Round(time.Microsecond), pct(lWS, 99).Round(time.Microsecond), pct(dWS, 50).Round(time.Microsecond), pct(dWS, 99).Round(time.Microsecond)),
		"< 0.5 ms p99 added")
	{
		const sockets = 500
		runtime.GC()
		before := procKB(b, pid, "VmRSS")
		var conns []*websocket.Conn
		for range sockets {
			c, _, err := websocket.DefaultDialer.Dial(wsLlmkey, http.Header{"Authorization": {"Bearer " + token}})
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		time.Sleep(200 * time.Millisecond)
		during := procKB(b, pid, "VmRSS")
		for _, c := range conns {
			c.Close()
		}
		row(fmt.Sprintf("memory per open WebSocket (%d open)", len(conns)),
			fmt.Sprintf("%.1f KiB (RSS %d -> %d kB)", float64(during-before)/float64(max(len(conns), 1)), before, during), "< 64 KiB")
	}

	// CLI wall times.
	warm := median(21, func() { u.llmkey("exec", "--", "true") })
	status := median(21, func() { u.llmkey("status") })
	row("llmkey exec -- true, daemon running (median of 21)", warm.Round(100*time.Microsecond).String(), "< 15 ms")
	row("llmkey status (median of 21)", status.Round(100*time.Microsecond).String(), "< 15 ms")

	// Keyfile edit to effect: a new key shows in the daemon's status.
	sock := filepath.Join(u.runtimeDir(), "sock")
	ctl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	kf := readFile(b, u.keyfile())
	edit := median(5, func() {
		name := fmt.Sprintf("k%d", time.Now().UnixNano())
		kf += fmt.Sprintf("\n[[key]]\nprovider = \"openai\"\nname = %q\nsecret = %q\n", name, secret+name)
		tmp := u.keyfile() + ".tmp"
		writeFile(b, tmp, kf, 0o600)
		os.Rename(tmp, u.keyfile())
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			resp, err := ctl.Get("http://llmkey/v1/status")
			if err != nil {
				continue
			}
			bb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(bb), `"name": "`+name+`"`) || strings.Contains(string(bb), `"name":"`+name+`"`) {
				return
			}
		}
	})
	row("keyfile edit to effect (median of 5)", edit.Round(time.Millisecond).String(), "< 250 ms")

	row("idle daemon wakeups, 30 s after a burst", fmt.Sprintf("%.2f per second", idleWakeups(b, lk, token, pid)), "< 2 per second")

	cliStarts(b, u, sock, row)

	// Cold start: exec with no daemon running.
	cold := median(5, func() {
		b.StopTimer()
		u.llmkey("stop")
		b.StartTimer()
		u.llmkey("exec", "--", "true")
	})
	row("llmkey exec -- true, cold: spawns the daemon (median of 5)", cold.Round(time.Millisecond).String(), "< 300 ms")

	fmt.Println()
	b.ReportMetric(rps, "llmkey/bare-rps")
	b.ReportMetric(p50, "llmkey/bare-p50")
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// startProgram is a program whose start the harness times.
type startProgram struct {
	what, target string
	argv         []string
}

// cliStarts adds the harness's rows for the CLI's own start, against a Go
// hello world built here, with u's daemon running on sock. Every program
// runs once a round, in turn, so that a change in the machine's load
// falls on all of them alike.
func cliStarts(b *testing.B, u *user, sock string, row func(what, measured, target string)) {
	programs := startPrograms(b, sock)
	times := make([][]time.Duration, len(programs))
	for range 101 {
		for i, p := range programs {
			cmd := exec.Command(p.argv[0], p.argv[1:]...)
			cmd.Env, cmd.Dir = u.env, u.home
			t0 := time.Now()
			err := cmd.Run()
			times[i] = append(times[i], time.Since(t0))
			if err != nil {
				b.Fatalf("%s: %v", p.what, err)
			}
		}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	var hello time.Duration
	for i, p := range programs {
		slices.Sort(times[i])
		start := times[i][len(times[i])/2]
		measured := ms(start)
		if i == 0 {
			hello = start
		} else {
			measured += " (hello +" + ms(start-hello) + ")"
		}
		row(p.what, measured, p.target)
	}
}

// startPrograms are the CLI's starts and what sets their floor, the Go
// hello world first.
func startPrograms(b *testing.B, sock string) []startProgram {
	tmp := b.TempDir()
	goBuild := func(name string, env []string, args ...string) string {
		out := filepath.Join(tmp, name)
		cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", name, err, o)
		}
		return out
	}
	goProgram := func(name, src string) string {
		path := filepath.Join(tmp, name+".go")
		writeFile(b, path, src, 0o644)
		return goBuild(name, nil, path)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	// What build flags alone can do: no cgo loader (net's, on Linux) and no
	// markdown renderer (urfave/cli's docs, which llmkey does not use).
	fastFlags := []string{"-tags", "urfave_cli_no_docs"}
	noCgo := []string{"CGO_ENABLED=0"}
	floor, floorFast := goBuild("floor", nil, "./cli/testdata/floor"), goBuild("floorfast", noCgo, append(fastFlags, "./cli/testdata/floor")...)
	const fast = "CGO_ENABLED=0 -tags urfave_cli_no_docs"
	return []startProgram{
		{"CLI start: Go hello world (medians of 101, in turn)", "", []string{goProgram("hello", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n")}},
		{"CLI start: llmkey version", "", []string{llmkeyBin, "version"}},
		{"CLI start: llmkey exec -- true", "exec <= hello + 2 ms", []string{llmkeyBin, "exec", "--", "true"}},
		// The floor under exec: a Go program that does nothing but replace
		// itself with true, the way exec ends.
		{"CLI start: a Go program that only execs true", "the floor under exec",
			[]string{goProgram("exectrue", "package main\n\nimport (\n\t\"os\"\n\t\"syscall\"\n)\n\nfunc main() { syscall.Exec("+strconv.Quote(truePath)+", []string{\"true\"}, os.Environ()) }\n")}},
		// The floor under any exec built of llmkey's parts: urfave/cli/v2,
		// and net/http for one call to the daemon (cli/testdata/floor).
		{"CLI start: urfave/cli/v2, a net/http call, exec true", "the floor of llmkey's parts", []string{floor, "exec", "--socket", sock, "--", "true"}},
		{"CLI start: the same, built without cgo and docs", fast, []string{floorFast, "exec", "--socket", sock, "--", "true"}},
		{"CLI start: llmkey exec, built without cgo and docs", fast, []string{goBuild("llmkeyfast", noCgo, append(fastFlags, ".")...), "exec", "--", "true"}},
		// The release's own build (.goreleaser.yaml), from its archive.
		{"CLI start: llmkey exec, release archive's static binary", fast + " -trimpath -s -w", []string{archiveBinary(b, releaseSnapshot(b)), "exec", "--", "true"}},
	}
}

// BenchmarkCLIStart runs only the harness's CLI start rows, in a few
// seconds, against a daemon of its own:
//
//	go test -run XXX -bench CLIStart -benchtime 1x .
func BenchmarkCLIStart(b *testing.B) {
	if raceEnabled {
		b.Skip("the harness measures the real binary: run it without -race")
	}
	b.StopTimer()
	u := newUser(b)
	writeFile(b, u.keyfile(), "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"sk-proj-harness"+strings.Repeat("x", 24)+"\"\n", 0o600)
	u.proxyEnv()
	fmt.Printf("\nllmkey CLI start (GOMAXPROCS %s)\n", os.Getenv("GOMAXPROCS"))
	cliStarts(b, u, filepath.Join(u.runtimeDir(), "sock"), func(what, measured, target string) {
		fmt.Printf("  %-58s %-44s %s\n", what, measured, target)
	})
	fmt.Println()
}

// idleWakeups is the harness's idle row: after a burst of requests, the
// wakeups of all the daemon's threads (context switches, voluntary and
// not) a second over 30 s of nothing.
func idleWakeups(b *testing.B, lk, token string, pid int) float64 {
	load(lk, token, 4, time.Second)
	time.Sleep(time.Second) // the burst's write and idle connections settle
	idleStart := ctxSwitches(b, pid)
	time.Sleep(30 * time.Second)
	return float64(ctxSwitches(b, pid)-idleStart) / 30
}

// BenchmarkIdleWakeups is the harness's idle row alone, on a daemon with
// 31 keys: go test -run XXX -bench IdleWakeups -benchtime 1x .
func BenchmarkIdleWakeups(b *testing.B) {
	if raceEnabled {
		b.Skip("it measures the real binary: run it without -race")
	}
	b.StopTimer()
	up := httptest.NewServer(harnessUpstream(make(chan struct{})))
	defer up.Close()
	u := newUser(b)
	var kf strings.Builder
	fmt.Fprintf(&kf, "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n", up.URL+"/v1")
	for i := range 31 {
		fmt.Fprintf(&kf, "\n[[key]]\nprovider = \"openai\"\nname = \"k%d\"\nsecret = \"sk-proj-idle%02d%s\"\n", i, i, strings.Repeat("x", 24))
	}
	writeFile(b, u.keyfile(), kf.String(), 0o600)
	env := u.proxyEnv()
	w := idleWakeups(b, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], u.daemonPID())
	fmt.Printf("  idle daemon wakeups, 30 s after a burst, 31 keys: %.2f per second (< 2 per second)\n", w)
	b.ReportMetric(w, "wakeups/s")
}
