package daemon

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// metrics are what /metrics serves, in the Prometheus text format, with
// the official client. Requests and tokens are read from the ledger at
// scrape time, so that they are the very numbers "llmkey usage" shows
// (since the usage files began, not since the daemon started).
type metrics struct {
	reg                *prometheus.Registry
	handler            http.Handler
	retries            *prometheus.CounterVec
	cooldowns          *prometheus.CounterVec
	denied             *prometheus.CounterVec
	fallbacks          *prometheus.CounterVec
	latency            *prometheus.HistogramVec
	stateWriteFailures prometheus.Counter
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmkey_retries_total",
		Help: "Requests sent again on another key after a failed attempt."}, []string{"provider"})
	m.cooldowns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmkey_cooldown_events_total",
		Help: cooldownHelp()}, []string{"provider", "key", "class"})
	m.denied = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmkey_denied_total",
		Help: "Requests answered by llmkey without a key: all keys cooling, none usable, circuit open."}, []string{"provider", "code"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "llmkey_fallback_total",
		Help: "Requests no key of their provider could serve, by what came of them: entered (the wait for the primary began), recovered (the primary served after all), fell_back (the fallback provider served), exhausted (no fallback could serve either)."},
		[]string{"provider", "fallback", "result"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "llmkey_upstream_latency_seconds",
		Help:    "Time from sending an attempt upstream to its response headers.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"provider"})
	m.stateWriteFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "llmkey_state_write_failures_total",
		Help: "Failed attempts to write the state dir; the daemon then keeps its state in memory."})
	m.reg.MustRegister(m.retries, m.cooldowns, m.denied, m.fallbacks, m.latency, m.stateWriteFailures,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "llmkey_in_flight", Help: "Requests being served now."},
			func() float64 { return float64(d.proxy.InFlight()) }),
		&liveCollector{d: d},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
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
func (m *metrics) Retried(provider string) { m.retries.WithLabelValues(provider).Inc() }
func (m *metrics) SetAside(provider, key string, class rotate.Class) {
	m.cooldowns.WithLabelValues(provider, key, class.String()).Inc()
}
func (m *metrics) Denied(provider string, code rotate.DenialCode) {
	m.denied.WithLabelValues(provider, string(code)).Inc()
}
func (m *metrics) Fallback(provider, to, result string) {
	m.fallbacks.WithLabelValues(provider, to, result).Inc()
}

// cooldownHelp says which classes cool a key and which park it, as
// rotation does.
func cooldownHelp() string {
	var cooled, parked []string
	for _, c := range rotate.Classes() {
		switch c.SetsAside() {
		case "cools":
			cooled = append(cooled, c.String())
		case "parks":
			parked = append(parked, c.String())
		}
	}
	return fmt.Sprintf("Keys set aside by a failure: cooled (%s) or parked (%s).", strings.Join(cooled, ", "), strings.Join(parked, ", "))
}

// liveCollector reads usage and key states at scrape time.
type liveCollector struct{ d *Daemon }

var (
	requestsDesc = prometheus.NewDesc("llmkey_requests_total",
		"Attempts sent upstream, by key, model and outcome (success, partial, or the failure's class), as in 'llmkey usage'.",
		[]string{"provider", "key", "model", "outcome"}, nil)
	tokensDesc = prometheus.NewDesc("llmkey_tokens_total",
		"Tokens the provider reported, by key, model and type (input, output, cache_read, cache_write, reasoning), as in 'llmkey usage'.",
		[]string{"provider", "key", "model", "type"}, nil)
	affinityDesc = prometheus.NewDesc("llmkey_affinity_total",
		"Requests of a conversation (previous_response_id, conversation, prompt_cache_key, a session header, cachedContent) by key: hit (came back to the key that served it), moved (its key could not serve; it stays on this one now). Since the daemon started.",
		[]string{"provider", "key", "result"}, nil)
	sessionsDesc = prometheus.NewDesc("llmkey_sessions",
		"Conversations the daemon keeps a key for, by provider.", []string{"provider"}, nil)
	keyStateDesc = prometheus.NewDesc("llmkey_key_state",
		"1 for the state each key is in now: "+strings.Join(stateNames(), ", ")+".",
		[]string{"provider", "key", "state"}, nil)
)

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- tokensDesc
	ch <- keyStateDesc
	ch <- affinityDesc
	ch <- sessionsDesc
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	type id struct{ provider, key, model string }
	sums := map[id]*state.Counts{}
	rows, _ := c.d.usage.snapshot()
	for _, r := range rows {
		k := id{r.Provider, r.Key, r.Model}
		if sums[k] == nil {
			sums[k] = &state.Counts{}
		}
		sums[k].Add(r.Counts)
	}
	counter := func(desc *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	for k, s := range sums {
		counter(requestsDesc, s.Successes, k.provider, k.key, k.model, "success")
		if s.Partial > 0 {
			counter(requestsDesc, s.Partial, k.provider, k.key, k.model, "partial")
		}
		for _, class := range slices.Sorted(maps.Keys(s.Failures)) {
			counter(requestsDesc, s.Failures[class], k.provider, k.key, k.model, class)
		}
		counter(tokensDesc, s.Input, k.provider, k.key, k.model, "input")
		counter(tokensDesc, s.Output, k.provider, k.key, k.model, "output")
		counter(tokensDesc, s.CacheRead, k.provider, k.key, k.model, "cache_read")
		counter(tokensDesc, s.CacheWrite, k.provider, k.key, k.model, "cache_write")
		counter(tokensDesc, s.Reasoning, k.provider, k.key, k.model, "reasoning")
	}
	for _, up := range c.d.snap.Load().Providers {
		views, _, _ := up.Pool.View()
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(up.Pool.Sessions()), up.Name)
		for _, v := range views {
			ch <- prometheus.MustNewConstMetric(affinityDesc, prometheus.CounterValue, float64(v.SessionHits), up.Name, v.Name, "hit")
			ch <- prometheus.MustNewConstMetric(affinityDesc, prometheus.CounterValue, float64(v.SessionMoves), up.Name, v.Name, "moved")
			for _, s := range rotate.KeyStates() {
				val := 0.0
				if v.State == s {
					val = 1
				}
				ch <- prometheus.MustNewConstMetric(keyStateDesc, prometheus.GaugeValue, val, up.Name, v.Name, string(s))
			}
		}
	}
}
