package daemon

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/llmkey/llmkey/state"
)

// The control API: HTTP over the UNIX socket, JSON, versioned paths.
//
//	GET  /v1/status  Status
//	GET  /v1/env     Env: proxy URL, local token, providers with keys
//	POST /v1/reload  re-read the keyfile now; Status
//	POST /v1/stop    drain and exit; 202 at once
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
	// Problems says in words why the daemon is degraded; empty when healthy.
	Problems []string `json:"problems"`
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
	Kind    string      `json:"kind"`
	BaseURL string      `json:"base_url"`
	Keys    []KeyStatus `json:"keys"`
}

// KeyStatus is one key's live state.
type KeyStatus struct {
	Name            string  `json:"name"`
	Fingerprint     string  `json:"fingerprint"`
	State           string  `json:"state"` // ready, cooling, disabled
	CooldownSeconds float64 `json:"cooldown_seconds"`
	Reason          string  `json:"reason,omitempty"`
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
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		d.reload("control request")
		writeJSON(w, http.StatusOK, d.status())
	})
	mux.HandleFunc("POST /v1/stop", func(w http.ResponseWriter, r *http.Request) {
		d.requestStop()
		writeJSON(w, http.StatusAccepted, map[string]any{"draining": true, "pid": os.Getpid()})
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

	names := make([]string, 0, len(snap.providers))
	for n := range snap.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		up := snap.providers[n]
		ps := ProviderStatus{Kind: string(up.Kind), BaseURL: up.BaseURL}
		for _, k := range up.keys {
			ps.Keys = append(ps.Keys, KeyStatus{Name: k.Name, Fingerprint: state.Fingerprint(k.Secret), State: "ready"})
		}
		st.Providers[n] = ps
	}
	if len(snap.cfg.Keys) == 0 {
		st.Problems = append(st.Problems, "no keys: add one with 'llmkey add PROVIDER NAME'")
	}
	if st.Draining {
		st.Problems = append(st.Problems, "draining: the daemon is shutting down")
	}
	return st
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
