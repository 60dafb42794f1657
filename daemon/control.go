package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strings"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// The control API: HTTP over the UNIX socket, JSON, versioned paths.
//
//	GET  /v1/status  Status
//	GET  /v1/env     Env: proxy URL, local token, providers with keys
//	GET  /v1/usage   UsageReport
//	POST /v1/reload  re-read the keyfile now; Status
//	POST /v1/stop    drain and exit; 202 at once
//	POST /v1/keys/{provider}/{name}/disable  {"for": "1h"} or {}; KeyStatus
//	POST /v1/keys/{provider}/{name}/enable   KeyStatus
//	POST /v1/keys/{provider}/{name}/reset    KeyStatus
//
// Scripts may use it too: curl --unix-socket "$SOCK" http://llmkey/v1/status

// Status is what "llmkey status --json" prints.
type Status struct {
	Running   bool                      `json:"running"`
	PID       int                       `json:"pid,omitempty"`
	Version   string                    `json:"version,omitempty"`
	ProxyURL  string                    `json:"proxy_url,omitempty"`
	InFlight  int64                     `json:"in_flight"`
	Draining  bool                      `json:"draining"`
	StartedAt *time.Time                `json:"started_at,omitempty"`
	Keyfile   *KeyfileStatus            `json:"keyfile,omitempty"`
	Providers map[string]ProviderStatus `json:"providers"`
	// State is how writing the state dir goes.
	State *StateStatus `json:"state,omitempty"`
	// Problems says in words why the daemon is degraded; empty when healthy.
	Problems []string `json:"problems"`
}

// UsageReport is the daemon's usage: every row, from memory, which is
// ahead of the usage files by at most a moment.
type UsageReport struct {
	Rows []state.UsageRow `json:"rows"`
	// Pricing is the keyfile's [pricing] table the daemon serves with.
	Pricing map[string]state.Price `json:"pricing"`
}

// KeyfileStatus is the keyfile in use and the error of the last load, if
// it failed (the daemon then serves the last good one).
type KeyfileStatus struct {
	Path     string    `json:"path"`
	Error    string    `json:"error,omitempty"`
	Line     int       `json:"line,omitempty"`
	Hint     string    `json:"hint,omitempty"`
	LoadedAt time.Time `json:"loaded_at"`
}

// ProviderStatus is one provider's keys.
type ProviderStatus struct {
	Kind     string `json:"kind"`
	BaseURL  string `json:"base_url"`
	Strategy string `json:"strategy"`
	// Circuit is "closed", or "open: REASON" while llmkey holds requests
	// back from a failing provider, for CircuitSeconds more.
	Circuit        string      `json:"circuit"`
	CircuitSeconds float64     `json:"circuit_seconds"`
	Keys           []KeyStatus `json:"keys"`
}

// KeyStatus is one key's live state.
type KeyStatus struct {
	Provider    string `json:"provider"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	// State is ready, cooling (rate limited), limited (at rpm, tpm,
	// max_concurrent or a daily budget), parked (invalid key, quota or
	// billing: tried again at Until) or disabled (by hand).
	State string `json:"state"`
	// CooldownSeconds is how long the state lasts, where known: for
	// parked, until the next probe.
	CooldownSeconds float64          `json:"cooldown_seconds"`
	Until           *time.Time       `json:"until,omitempty"`
	Reason          string           `json:"reason,omitempty"`
	InFlight        int              `json:"in_flight"`
	RequestsMinute  int              `json:"requests_last_minute"`
	TokensMinute    int              `json:"tokens_last_minute"`
	RequestsToday   int              `json:"requests_today"`
	TokensToday     int              `json:"tokens_today"`
	Failures        []rotate.Failure `json:"recent_failures"`
}

// Env is what "llmkey exec" and "llmkey env" need.
type Env struct {
	ProxyURL  string   `json:"proxy_url"`
	Token     string   `json:"token"`
	Providers []string `json:"providers"` // those with at least one key
	Version   string   `json:"version"`
}

func (d *Daemon) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.status())
	})
	mux.HandleFunc("GET /v1/env", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Env{ProxyURL: d.proxyURL, Token: d.token, Version: d.opts.Version,
			Providers: d.snap.Load().cfg.ProviderNames()})
	})
	mux.HandleFunc("GET /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		rows, _ := d.usage.snapshot()
		writeJSON(w, http.StatusOK, UsageReport{Rows: rows, Pricing: d.snap.Load().cfg.Pricing})
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		d.reload("control request")
		writeJSON(w, http.StatusOK, d.status())
	})
	mux.HandleFunc("POST /v1/stop", func(w http.ResponseWriter, r *http.Request) {
		d.requestStop()
		writeJSON(w, http.StatusAccepted, map[string]any{"draining": true, "pid": os.Getpid()})
	})
	mux.HandleFunc("POST /v1/keys/{provider}/{name}/{action}", d.serveKeyAction)
	// Profiles, for "what is it doing": only the user can reach the socket.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
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

func (d *Daemon) status() Status {
	snap := d.snap.Load()
	started := d.startedAt
	st := Status{Running: true, PID: os.Getpid(), Version: d.opts.Version, ProxyURL: d.proxyURL,
		InFlight: d.inFlight.Load(), Draining: d.draining.Load(), StartedAt: &started,
		Providers: map[string]ProviderStatus{}, Problems: []string{}}

	d.mu.Lock()
	kf := &KeyfileStatus{Path: d.opts.Paths.Keyfile, LoadedAt: d.loadedAt}
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
	d.mu.Unlock()
	st.Keyfile = kf
	if kf.Error != "" {
		st.Problems = append(st.Problems, kf.Error+" (serving the last good keyfile)")
	}

	for _, n := range slices.Sorted(maps.Keys(snap.providers)) {
		up := snap.providers[n]
		ps := providerStatus(up)
		usable := false
		for _, k := range ps.Keys {
			usable = usable || k.State == "ready" || k.State == "limited"
		}
		if !usable {
			var why []string
			for _, k := range ps.Keys {
				why = append(why, k.Name+" "+k.State+" ("+k.Reason+")")
			}
			st.Problems = append(st.Problems, fmt.Sprintf("%s has no usable key: %s", n, strings.Join(why, ", ")))
		}
		if ps.Circuit != "closed" {
			st.Problems = append(st.Problems, fmt.Sprintf("%s is failing, requests held back: %s", n, ps.Circuit))
		}
		st.Providers[n] = ps
	}
	if len(snap.cfg.Keys) == 0 {
		st.Problems = append(st.Problems, "no keys: add one with 'llmkey add PROVIDER NAME'")
	}
	if st.Draining {
		st.Problems = append(st.Problems, "draining: the daemon is shutting down")
	}
	ss, problem := d.stateStatus()
	st.State = &ss
	if problem != "" {
		st.Problems = append(st.Problems, problem)
	}
	return st
}

func providerStatus(up *upstream) ProviderStatus {
	ps := ProviderStatus{Kind: string(up.Kind), BaseURL: up.BaseURL, Strategy: up.Strategy, Circuit: "closed", Keys: []KeyStatus{}}
	views, circ, circUntil := up.rot.View()
	ps.Circuit = circ
	if !circUntil.IsZero() {
		ps.CircuitSeconds = secondsUntil(circUntil)
	}
	for _, v := range views {
		ps.Keys = append(ps.Keys, keyStatus(up, v))
	}
	return ps
}

func keyStatus(up *upstream, v rotate.KeyView) KeyStatus {
	ks := KeyStatus{Provider: up.Name, Name: v.Name, State: v.State, Reason: v.Reason, InFlight: v.InFlight,
		RequestsMinute: v.RequestsMinute, TokensMinute: v.TokensMinute, RequestsToday: v.RequestsToday,
		TokensToday: v.TokensToday, Failures: v.Failures}
	if ks.Failures == nil {
		ks.Failures = []rotate.Failure{}
	}
	if k, ok := up.keys[v.Name]; ok {
		ks.Fingerprint = k.fingerprint
	}
	if !v.Until.IsZero() {
		u := v.Until
		ks.Until = &u
		ks.CooldownSeconds = secondsUntil(u)
	}
	return ks
}

func secondsUntil(t time.Time) float64 {
	s := time.Until(t).Seconds()
	if s < 0 {
		return 0
	}
	return math.Round(s*10) / 10
}

// serveKeyAction is enable, disable [for] and reset of one key.
func (d *Daemon) serveKeyAction(w http.ResponseWriter, r *http.Request) {
	prov, name, action := r.PathValue("provider"), r.PathValue("name"), r.PathValue("action")
	up, ok := d.snap.Load().providers[prov]
	if !ok || up.rot == nil || !slices.Contains(up.order, name) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no key %s/%s", prov, name),
			"hint": "'llmkey list' shows the keys"})
		return
	}
	switch action {
	case "disable":
		var req struct {
			For string `json:"for"`
		}
		if r.Body != nil {
			json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req)
		}
		var until time.Time
		if req.For != "" {
			dur, err := time.ParseDuration(req.For)
			if err != nil || dur <= 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("bad duration %q", req.For), "hint": `use e.g. "30m", "2h"`})
				return
			}
			until = time.Now().Add(dur)
		}
		up.rot.Disable(name, until)
	case "enable":
		up.rot.Enable(name)
	case "reset":
		up.rot.Reset(name)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action " + action, "hint": "enable, disable or reset"})
		return
	}
	d.log.Info("key state set by hand", "action", action, "provider", prov, "key", name)
	if err := d.saveOverrides(); err != nil {
		d.overridesDirty.Store(true) // the keeper writes it once it can
		d.log.Warn("could not save the keys disabled by hand; they hold in memory", "err", err)
	}
	for _, ks := range providerStatus(up).Keys {
		if ks.Name == name {
			writeJSON(w, http.StatusOK, ks)
			return
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
