// SPDX-License-Identifier: MIT

package daemon

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/llmkey/llmkey/daemon/promtext"
	"github.com/llmkey/llmkey/daemon/proxy"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// metrics are what /metrics serves, in the Prometheus text format.
// Requests and tokens are read from the ledger at scrape time, so that
// they are the very numbers "llmkey usage" shows (since the usage files
// began, not since the daemon started).
type metrics struct {
	reg                *promtext.Registry
	handler            http.Handler
	retries            *promtext.CounterVec
	cooldowns          *promtext.CounterVec
	denied             *promtext.CounterVec
	fallbacks          *promtext.CounterVec
	latency            *promtext.HistogramVec
	stateWriteFailures *promtext.Counter
}

func newMetrics(d *Daemon) *metrics {
	r := &promtext.Registry{}
	m := &metrics{reg: r}
	m.retries = r.CounterVec("llmkey_retries_total", "Requests sent again on another key after a failed attempt.", "provider")
	m.cooldowns = r.CounterVec("llmkey_cooldown_events_total", cooldownHelp(), "provider", "key", "class")
	m.denied = r.CounterVec("llmkey_denied_total",
		"Requests answered by llmkey without a key: all keys cooling, none usable, circuit open.", "provider", "code")
	m.fallbacks = r.CounterVec("llmkey_fallback_total",
		"Requests no key of their provider could serve, by what came of them: entered (the wait for the primary began), recovered (the primary served after all), fell_back (the fallback provider served), exhausted (no fallback could serve either).",
		"provider", "fallback", "result")
	m.latency = r.HistogramVec("llmkey_upstream_latency_seconds", "Time from sending an attempt upstream to its response headers.",
		[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}, "provider")
	m.stateWriteFailures = r.Counter("llmkey_state_write_failures_total",
		"Failed attempts to write the state dir; the daemon then keeps its state in memory.")
	r.Func("llmkey_in_flight", "Requests being served now.", promtext.GaugeType, nil,
		func(emit func(float64, ...string)) { emit(float64(d.proxy.InFlight())) })
	d.liveMetrics(r)
	processMetrics(r)
	m.handler = r.Handler()
	return m
}

func stateNames() []string {
	var out []string
	for _, s := range rotate.KeyStates() {
		out = append(out, string(s))
	}
	return out
}

// Retried, SetAside and Denied are what the request path tells metrics.
func (m *metrics) Retried(provider string) { m.retries.With(provider).Inc() }
func (m *metrics) SetAside(provider, key string, class rotate.Class) {
	m.cooldowns.With(provider, key, class.String()).Inc()
}
func (m *metrics) Denied(provider string, code rotate.DenialCode) {
	m.denied.With(provider, string(code)).Inc()
}
func (m *metrics) Fallback(provider, to string, result proxy.FallbackResult) {
	m.fallbacks.With(provider, to, string(result)).Inc()
}

// cooldownHelp says which classes cool a key and which park it, as
// rotation does.
func cooldownHelp() string {
	var cooled, parked []string
	for _, c := range rotate.Classes() {
		switch c.SetsAside() {
		case rotate.Cooling:
			cooled = append(cooled, c.String())
		case rotate.Parked:
			parked = append(parked, c.String())
		}
	}
	return fmt.Sprintf("Keys set aside by a failure: cooled (%s) or parked (%s).", strings.Join(cooled, ", "), strings.Join(parked, ", "))
}

// liveMetrics are read at scrape time: usage from the ledger, key
// states and conversations from the pools.
func (d *Daemon) liveMetrics(r *promtext.Registry) {
	d.usageMetrics(r)
	d.poolMetrics(r)
}

// usageKey is what the usage families count by.
type usageKey struct{ provider, key, model string }

// usageMetrics are the ledger's requests and tokens, summed over days
// once a scrape (scrapes take turns).
func (d *Daemon) usageMetrics(r *promtext.Registry) {
	var sums map[usageKey]*state.Counts
	r.BeforeScrape(func() {
		sums = map[usageKey]*state.Counts{}
		rows, _ := d.usage.snapshot()
		for _, row := range rows {
			if row.Key == "" {
				continue // refusals, which llmkey_denied_total counts
			}
			k := usageKey{row.Provider, row.Key, row.Model}
			if sums[k] == nil {
				sums[k] = &state.Counts{}
			}
			sums[k].Add(row.Counts)
		}
	})
	r.Func("llmkey_requests_total",
		"Attempts sent upstream, by key, model and outcome (success, partial, or the failure's class), as in 'llmkey usage'.",
		promtext.CounterType, []string{"provider", "key", "model", "outcome"}, func(emit func(float64, ...string)) {
			for k, s := range sums {
				emit(float64(s.Successes), k.provider, k.key, k.model, "success")
				if s.Partial > 0 {
					emit(float64(s.Partial), k.provider, k.key, k.model, "partial")
				}
				for _, class := range slices.Sorted(maps.Keys(s.Failures)) {
					emit(float64(s.Failures[class]), k.provider, k.key, k.model, class)
				}
			}
		})
	r.Func("llmkey_tokens_total",
		"Tokens the provider reported, by key, model and type (input, output, cache_read, cache_write, reasoning), as in 'llmkey usage'.",
		promtext.CounterType, []string{"provider", "key", "model", "type"}, func(emit func(float64, ...string)) {
			for k, s := range sums {
				emit(float64(s.Input), k.provider, k.key, k.model, "input")
				emit(float64(s.Output), k.provider, k.key, k.model, "output")
				emit(float64(s.CacheRead), k.provider, k.key, k.model, "cache_read")
				emit(float64(s.CacheWrite), k.provider, k.key, k.model, "cache_write")
				emit(float64(s.Reasoning), k.provider, k.key, k.model, "reasoning")
			}
		})
}

// poolMetrics are the keys' states and the conversations kept, read
// from the pools once a scrape.
func (d *Daemon) poolMetrics(r *promtext.Registry) {
	type pool struct {
		name     string
		sessions int
		views    []rotate.KeyView
	}
	var pools []pool
	r.BeforeScrape(func() {
		pools = pools[:0]
		for _, up := range d.snap.Load().Providers {
			views, _, _ := up.Pool.View()
			pools = append(pools, pool{up.Name, up.Pool.Sessions(), views})
		}
	})
	r.Func("llmkey_affinity_total",
		"Requests of a conversation (previous_response_id, conversation, prompt_cache_key, a session header, cachedContent) by key: hit (came back to the key that served it), moved (its key could not serve; it stays on this one now). Since the daemon started.",
		promtext.CounterType, []string{"provider", "key", "result"}, func(emit func(float64, ...string)) {
			for _, p := range pools {
				for _, v := range p.views {
					emit(float64(v.SessionHits), p.name, v.Name, "hit")
					emit(float64(v.SessionMoves), p.name, v.Name, "moved")
				}
			}
		})
	r.Func("llmkey_sessions", "Conversations the daemon keeps a key for, by provider.",
		promtext.GaugeType, []string{"provider"}, func(emit func(float64, ...string)) {
			for _, p := range pools {
				emit(float64(p.sessions), p.name)
			}
		})
	r.Func("llmkey_key_state", "1 for the state each key is in now: "+strings.Join(stateNames(), ", ")+".",
		promtext.GaugeType, []string{"provider", "key", "state"}, func(emit func(float64, ...string)) {
			for _, p := range pools {
				for _, v := range p.views {
					for _, s := range rotate.KeyStates() {
						val := 0.0
						if v.State == s {
							val = 1
						}
						emit(val, p.name, v.Name, string(s))
					}
				}
			}
		})
}
