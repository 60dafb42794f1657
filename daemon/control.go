// SPDX-License-Identifier: MIT

package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/proxy"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// controlHandler serves the control API (its contract is the control
// package's), and profiles for "what is it doing": only the user can
// reach the socket.
func (d *Daemon) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.status())
	})
	mux.HandleFunc("GET /v1/env", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, control.Env{ProxyURL: d.proxyURL, Token: d.proxy.Token, Version: d.opts.Version,
			Providers: d.snap.Load().Config.ProviderNames(), Keyfile: d.opts.Paths.Keyfile, Problems: d.told.untold(d.statusOf(false))})
	})
	mux.HandleFunc("GET /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		rows, _ := d.usage.snapshot()
		writeJSON(w, http.StatusOK, control.UsageReport{Rows: rows, Pricing: d.snap.Load().Config.Pricing})
	})
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.history())
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		d.reload("control request")
		writeJSON(w, http.StatusOK, d.status())
	})
	mux.HandleFunc("POST /v1/stop", d.serveStop)
	mux.HandleFunc("POST /v1/handover", d.serveHandover)
	mux.HandleFunc("POST /v1/keys/{provider}/{name}/{action}", d.serveKeyAction)
	mux.HandleFunc("POST /v1/keys/{provider}/{name}/checked", d.serveKeyChecked)
	mux.HandleFunc("POST /v1/keys/{provider}/{name}/rename", d.serveKeyRename)
	d.serveTokens(mux)
	debugRoutes(mux)
	// Like tailscale's localapi: a browser must never drive this API, even
	// if something forwards the socket.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "browser requests are not allowed on the control socket"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// debugRoutes are the profiles and memory statistics, for "what is it
// doing": only the user can reach the socket.
func debugRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/{name}", serveProfile)
	mux.HandleFunc("GET /debug/pprof/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "profile (CPU, ?seconds=N, default 30)")
		for _, p := range pprof.Profiles() {
			fmt.Fprintf(w, "%s (%d)\n", p.Name(), p.Count())
		}
	})
	mux.HandleFunc("GET /debug/memstats", func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// How big a new goroutine's stack starts (the runtime sizes it
		// from the stacks it scanned), and how much stack the last GC
		// scanned: what the stack part of a request's memory comes from.
		ss := []rtmetrics.Sample{{Name: "/gc/stack/starting-size:bytes"}, {Name: "/gc/scan/stack:bytes"}}
		rtmetrics.Read(ss)
		writeJSON(w, http.StatusOK, map[string]any{"heap_inuse": ms.HeapInuse, "stack_inuse": ms.StackInuse, "sys": ms.Sys,
			"goroutines": runtime.NumGoroutine(), "heap_objects": ms.HeapObjects, "gc_sys": ms.GCSys, "other_sys": ms.OtherSys, "mspan_inuse": ms.MSpanInuse,
			"stack_starting_size": ss[0].Value.Uint64(), "stack_scanned_last_gc": ss[1].Value.Uint64(), "num_gc": ms.NumGC})
	})
}

// serveProfile writes one of runtime/pprof's profiles, as net/http/pprof
// does (?debug=N for text, ?gc=1 to collect first; profile is the CPU
// for ?seconds=N), without that package's handlers on the default mux.
func serveProfile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	debug, _ := strconv.Atoi(q.Get("debug"))
	if name == "profile" {
		secs, err := strconv.Atoi(q.Get("seconds"))
		if err != nil || secs <= 0 {
			secs = 30
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := pprof.StartCPUProfile(w); err != nil {
			writeJSON(w, http.StatusConflict, control.APIError{Msg: "cannot profile: " + err.Error(), Hint: "one CPU profile at a time"})
			return
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-r.Context().Done():
		}
		pprof.StopCPUProfile()
		return
	}
	p := pprof.Lookup(name)
	if p == nil {
		writeJSON(w, http.StatusNotFound, control.APIError{Msg: "no profile " + name, Hint: "GET /debug/pprof/ lists them"})
		return
	}
	if name == "heap" && q.Get("gc") != "" {
		runtime.GC()
	}
	if debug > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	p.WriteTo(w, debug)
}

func (d *Daemon) status() control.Status { return d.statusOf(true) }

// statusOf is the daemon's status; without usage, the keys' cache reads
// today are left out (exec's call needs only the problems).
func (d *Daemon) statusOf(usage bool) control.Status {
	snap := d.snap.Load()
	started := d.startedAt
	st := control.Status{Running: true, PID: os.Getpid(), Version: d.opts.Version, ProxyURL: d.proxyURL,
		InFlight: d.proxy.InFlight(), Draining: d.proxy.Draining(), StartedAt: &started, Log: &d.opts.LogTo, SocketActivated: d.runtime.handedOver, Spawned: d.opts.Spawned,
		Providers: map[string]control.ProviderStatus{}, Problems: []string{}}

	kf := d.keyfileStatus()
	st.Keyfile = kf
	if kf.Error != "" {
		if kf.ServingLastGood {
			st.Problems = append(st.Problems, kf.Error+" (serving the last good keyfile)")
		} else {
			st.Problems = append(st.Problems, kf.Error)
		}
	}

	now := d.clock.Now()
	var cached map[string]int64
	if usage {
		cached = d.usage.cacheReads(state.Day(now))
	}
	for _, n := range slices.Sorted(maps.Keys(snap.Providers)) {
		ps := providerStatus(snap.Providers[n], now, cached)
		st.Problems = append(st.Problems, providerProblems(snap, n, ps)...)
		st.Providers[n] = ps
	}
	if len(snap.Config.Keys) == 0 {
		st.Problems = append(st.Problems, "no keys: add one with 'llmkey add PROVIDER NAME'")
	}
	if st.Draining {
		st.Problems = append(st.Problems, "draining: the daemon is shutting down")
	}
	if d.runtime.replaced.Load() {
		st.Problems = append(st.Problems, "the control socket that llmkey.socket holds was removed: once this daemon stops, llmkey commands wake the next one through the port, "+
			"a moment slower; systemctl --user restart llmkey.socket puts it back")
	}
	if refused := d.runtime.refused.Load(); refused != nil {
		st.Problems = append(st.Problems, *refused)
	}
	ss, problem := d.stateStatus()
	st.State = &ss
	if problem != "" {
		st.Problems = append(st.Problems, problem)
	}
	return st
}

// keyfileStatus is the keyfile served, and the error of its last load.
func (d *Daemon) keyfileStatus() *control.KeyfileStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	kf := &control.KeyfileStatus{Path: d.opts.Paths.Keyfile, LoadedAt: d.loadedAt}
	if err := d.keyfileErr; err != nil {
		kf.Error = err.Error()
		var ke *state.KeyfileError
		if errors.As(err, &ke) {
			kf.Line = ke.Line
		}
		var h interface{ HintText() string }
		if errors.As(err, &h) {
			kf.Hint = h.HintText()
		}
	}
	kf.ServingLastGood = kf.Error != "" && d.servedGood
	return kf
}

// providerProblems are what is wrong with provider n, whose status is
// ps: no usable key, keys that need their owner, a budget blind to a
// model, a failing circuit, a fallback without keys.
func providerProblems(snap *proxy.Snapshot, n string, ps control.ProviderStatus) []string {
	var out []string
	up := snap.Providers[n]
	usable := false
	for _, k := range ps.Keys {
		usable = usable || rotate.KeyState(k.State).Serving()
	}
	if !usable {
		var why []string
		for _, k := range ps.Keys {
			if k.Action != "" { // its own problem below says why
				why = append(why, k.Name+" "+k.State)
			} else {
				why = append(why, k.Name+" "+k.State+" ("+k.Reason+")")
			}
		}
		out = append(out, fmt.Sprintf("%s has no usable key: %s", n, strings.Join(why, ", ")))
	}
	for _, k := range ps.Keys {
		if k.Action != "" {
			out = append(out, KeyProblem(k))
		}
		if p := blindBudget(n, k, up.Keys[k.Name].Group, snap.Config); p != "" {
			out = append(out, p)
		}
	}
	if ps.Circuit != "closed" {
		out = append(out, fmt.Sprintf("%s is failing, requests held back: %s", n, ps.Circuit))
	}
	for _, fb := range up.Fallback {
		if snap.Providers[fb] == nil {
			out = append(out, fmt.Sprintf("%s falls over to %s, which has no key: add one (llmkey add %s) or take it out of fallback", n, fb, fb))
		}
	}
	return out
}

// providerStatus is up's state now; cached is each key's cache reads
// today (nil: not wanted).
func providerStatus(up *proxy.Upstream, now time.Time, cached map[string]int64) control.ProviderStatus {
	ps := control.ProviderStatus{Kind: string(up.Kind), BaseURL: up.BaseURL, Strategy: string(up.Strategy), Circuit: "closed", Keys: []control.KeyStatus{},
		Sessions: up.Pool.Sessions(), Fallback: up.Fallback}
	views, circ, circUntil := up.Pool.View()
	ps.Circuit = circ
	if !circUntil.IsZero() {
		ps.CircuitSeconds = secondsUntil(circUntil, now)
	}
	for _, v := range views {
		ks := keyStatus(up, v, now)
		ks.CacheReadToday = cached[up.Name+"/"+v.Name]
		ps.Keys = append(ps.Keys, ks)
	}
	return ps
}

func keyStatus(up *proxy.Upstream, v rotate.KeyView, now time.Time) control.KeyStatus {
	ks := control.KeyStatus{Provider: up.Name, Name: v.Name, State: string(v.State), Reason: v.Reason, InFlight: v.InFlight,
		RequestsMinute: v.RequestsMinute, TokensMinute: v.TokensMinute, RequestsToday: v.RequestsToday,
		TokensToday: v.TokensToday, Failures: []control.Failure{}, Group: v.Group, AffinityHits: v.SessionHits, AffinityMoves: v.SessionMoves}
	if !v.ScarceUntil.IsZero() {
		t := v.ScarceUntil
		ks.ScarceUntil = &t
	}
	spendStatus(&ks, v)
	for _, f := range v.Failures {
		ks.Failures = append(ks.Failures, control.Failure{At: f.At, Class: f.Class.String(), Status: f.Status, Model: f.Model, Reason: f.Reason})
	}
	if k, ok := up.Keys[v.Name]; ok {
		ks.Fingerprint = k.Fingerprint
	}
	switch {
	case v.State == rotate.Unavailable && v.Reason == readingSecret:
		// Nothing to do but wait: it serves once read.
	case v.State == rotate.Unavailable:
		// The reason says what keeps it from being read, and so what
		// to do: a locked keychain, no session bus, a failing command.
		ks.Action = "it serves nothing until its secret can be read (the daemon tries again every 30s; llmkey reload now)"
	case v.State != rotate.Ready && v.Cause.NeedsUser():
		ks.Action = userAction(up.Name+"/"+v.Name, v)
	}
	if !v.Until.IsZero() {
		u := v.Until
		ks.Until = &u
		ks.CooldownSeconds = secondsUntil(u, now)
	}
	return ks
}

// KeyProblem is status's problem for a key that waits for its owner
// (one with an Action): which, what it is, why, and what to do.
func KeyProblem(k control.KeyStatus) string {
	return fmt.Sprintf("%s/%s %s (%s): %s", k.Provider, k.Name, k.State, k.Reason, k.Action)
}

// userAction says what the owner of a key set aside for good must do.
func userAction(ref string, v rotate.KeyView) string {
	switch v.Cause {
	case rotate.InvalidKey:
		return fmt.Sprintf("the provider does not accept this key: replace its secret (llmkey set %s --secret) or remove it (llmkey rm %s)", ref, ref)
	case rotate.Quota:
		when := "until you add funds or quota"
		if v.State == rotate.Parked && !v.Until.IsZero() {
			when = "until " + v.Until.UTC().Format("2006-01-02 15:04 UTC") + " at the earliest"
		}
		return fmt.Sprintf("out of quota or credit %s: top up the account, or llmkey disable %s", when, ref)
	case rotate.Forbidden:
		return fmt.Sprintf("this key may not use that model: give its project access, or limit the key with models = [...] (llmkey reset %s after)", ref)
	}
	return ""
}

func secondsUntil(t, now time.Time) float64 {
	s := t.Sub(now).Seconds()
	if s < 0 {
		return 0
	}
	return math.Round(s*10) / 10
}

// serveKeyAction is enable, disable [for] and reset of one key.
func (d *Daemon) serveKeyAction(w http.ResponseWriter, r *http.Request) {
	prov, name, action := r.PathValue("provider"), r.PathValue("name"), r.PathValue("action")
	up, ok := d.snap.Load().Providers[prov]
	if !ok || up.Pool == nil || !slices.Contains(up.Order, name) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no key %s/%s", prov, name),
			"hint": "'llmkey list' shows the keys"})
		return
	}
	switch action {
	case "disable":
		dur, msg := disableFor(r)
		if msg != "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg,
				"hint": `send {"for": "2h"} (a string: 90s, 30m, 2h, 1d; at most ` + control.MaxDisableForText + `), or no body to disable until enabled`})
			return
		}
		var until time.Time
		if dur > 0 {
			until = d.clock.Now().Add(dur)
		}
		up.Pool.Disable(name, until)
	case "enable":
		up.Pool.Enable(name)
	case "reset":
		up.Pool.Reset(name)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action " + action, "hint": "enable, disable or reset"})
		return
	}
	d.log.Info("key state set by hand", "action", action, "provider", prov, "key", name)
	if err := d.saveOverrides(); err != nil {
		d.overridesDirty.Store(true) // the keeper writes it once it can
		select {
		case d.usage.changed <- struct{}{}: // wake it
		default:
		}
		d.log.Warn("could not save the keys disabled by hand; they hold in memory", "err", err)
	}
	for _, ks := range providerStatus(up, d.clock.Now(), nil).Keys {
		if ks.Name == name {
			writeJSON(w, http.StatusOK, ks)
			return
		}
	}
}

// disableFor reads a disable's body: no body, {} or {"for": ""} is until
// enabled (0); else a duration string of state.ParseDuration, positive
// and at most control.MaxDisableFor. Anything else is refused with why
// (msg): a body read leniently would disable a key for ever.
func disableFor(r *http.Request) (dur time.Duration, msg string) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	switch {
	case err != nil:
		return 0, "could not read the body: " + err.Error()
	case len(b) > 4096:
		return 0, "the body is longer than 4096 bytes"
	case len(bytes.TrimSpace(b)) == 0:
		return 0, ""
	}
	var req struct {
		For *json.RawMessage `json:"for"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return 0, fmt.Sprintf("the body is not {\"for\": DURATION}: %s", bodyError(err))
	}
	if req.For == nil || string(*req.For) == "null" {
		return 0, ""
	}
	var s string
	if err := json.Unmarshal(*req.For, &s); err != nil {
		return 0, fmt.Sprintf("\"for\" is %s, not a duration string such as \"2h\"", *req.For)
	}
	if s == "" {
		return 0, ""
	}
	d, err := state.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("\"for\": %v", err)
	case d <= 0:
		return 0, fmt.Sprintf("\"for\": %q is not a positive duration", s)
	case d > control.MaxDisableFor:
		return 0, fmt.Sprintf("\"for\": %q is longer than %s", s, control.MaxDisableForText)
	}
	return d, ""
}

// bodyError is why a JSON body did not decode, in a few words.
func bodyError(err error) string {
	if err == nil {
		return "more than one value"
	}
	return err.Error()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
