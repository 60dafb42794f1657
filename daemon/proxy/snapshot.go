// SPDX-License-Identifier: MIT

package proxy

import (
	"math"
	"net/http"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// Snapshot is one loaded keyfile as the request path sees it, immutable
// once published: a reload builds a new one, and requests in flight keep
// the one they started with.
type Snapshot struct {
	Config    *state.Config
	Providers map[string]*Upstream // those with keys
	Secrets   []string             // every secret, for redaction
}

// Upstream is one provider with its keys.
type Upstream struct {
	state.Provider
	Keys  map[string]Key // by name
	Order []string       // names in keyfile order
	Pool  *rotate.Pool   // nil when the provider has no keys
	// Prices are the keyfile's and the built-in ones, for what an answer
	// cost (the dollar budgets).
	Prices *state.Prices
	// Latency observes the time to response headers; never nil.
	Latency Observer
	// authHeader is the header the keys go upstream in, canonical.
	authHeader string
}

// Observer takes one measurement (a prometheus.Observer is one).
type Observer interface{ Observe(float64) }

type noObserver struct{}

func (noObserver) Observe(float64) {}

// Key is a key with its fingerprint, which names it in usage, status and
// rotation without its secret.
type Key struct {
	state.Key
	Fingerprint string
	auth        []string   // the value of the provider's auth header
	extra       [][]string // the values of its kind's wire.Format.KeyHeaders
	// Unavailable says why the key's secret could not be read.
	Unavailable string
}

// authorize puts the key's credentials in h, an outbound request's
// headers: its auth header, and the headers that go with this key only
// (a client's own are removed).
func (k Key) authorize(h http.Header, up *Upstream) {
	h[up.authHeader] = k.auth
	for i, kh := range wire.For(up.Kind).KeyHeaders {
		if v := k.extra[i]; v != nil {
			h[kh.Name] = v
		} else {
			delete(h, kh.Name)
		}
	}
}

// Spec is what rotation may know of the key: never the secret.
func (k Key) Spec() rotate.KeySpec {
	entry := k.Key
	// Nor the name: a renamed key (llmkey rename) is the same key.
	entry.Secret, entry.Name = "", ""
	return rotate.KeySpec{Name: k.Name, Fingerprint: k.Fingerprint, Weight: k.Weight, Models: k.Models,
		RPM: k.RPM, TPM: k.TPM, MaxConcurrent: k.MaxConcurrent, RPD: k.RPD, TPD: k.TPD,
		BudgetDay: nanoUSD(k.BudgetUSDDay), BudgetMonth: nanoUSD(k.BudgetUSDMonth),
		Group: k.Group, Entry: state.FormatKey(entry), Unavailable: k.Unavailable}
}

// nanoUSD is an amount of dollars in rotate's unit.
func nanoUSD(usd float64) int64 { return int64(math.Round(usd * rotate.NanoUSD)) }

// spendOf is what an answer of model with counts c spent: its tokens
// and, at up's prices, its cost; a model without a price costs nothing
// and is named.
func spendOf(up *Upstream, model string, c state.Counts) rotate.Spend {
	s := rotate.Spend{Tokens: int(c.Tokens())}
	if s.Tokens == 0 && c.CacheRead == 0 || up.Prices == nil {
		return s
	}
	price, _ := up.Prices.For(model)
	cost, known := price.Cost(c)
	if !known {
		s.Unpriced = model
		return s
	}
	s.Cost = int64(math.Round(cost * rotate.NanoUSD))
	return s
}

// Build makes the snapshot of cfg, whose keys hold their secrets (read
// from where the keyfile says; unavailable names those that could not
// be, by PROVIDER/NAME, with why). pool gives each provider with keys its
// pool (pools outlive snapshots: a key keeps its cooldowns across
// reloads), which Build tells its keys; latency gives its observer (nil:
// none).
func Build(cfg *state.Config, unavailable map[string]string, pool func(provider string) *rotate.Pool, latency func(provider string) Observer) *Snapshot {
	s := &Snapshot{Config: cfg, Providers: map[string]*Upstream{}}
	prices := state.NewPrices(cfg.Pricing)
	specs := map[string][]rotate.KeySpec{}
	for _, k := range cfg.Keys {
		u := s.Providers[k.Provider]
		if u == nil {
			p, _ := cfg.Provider(k.Provider)
			u = &Upstream{Provider: p, Keys: map[string]Key{}, authHeader: wire.AuthHeader(p.Kind), Latency: noObserver{}, Prices: prices}
			if latency != nil {
				u.Latency = latency(k.Provider)
			}
			s.Providers[k.Provider] = u
		}
		key := Key{Key: k, Fingerprint: state.Fingerprint(k.Secret), auth: []string{wire.AuthValue(u.Kind, k.Secret)},
			extra: wire.KeyHeaderValues(u.Kind, k), Unavailable: unavailable[k.Ref()]}
		u.Keys[k.Name] = key
		u.Order = append(u.Order, k.Name)
		if k.Secret != "" {
			s.Secrets = append(s.Secrets, k.Secret)
		}
		specs[k.Provider] = append(specs[k.Provider], key.Spec())
	}
	groups := map[string]rotate.Limits{}
	for name, g := range cfg.Groups {
		groups[name] = rotate.Limits{RPM: g.RPM, TPM: g.TPM, MaxConcurrent: g.MaxConcurrent, RPD: g.RPD, TPD: g.TPD,
			BudgetDay: nanoUSD(g.BudgetUSDDay), BudgetMonth: nanoUSD(g.BudgetUSDMonth)}
	}
	for name, u := range s.Providers {
		u.Pool = pool(name)
		u.Pool.Update(rotate.Policy{Strategy: u.Strategy, ProbeInterval: cfg.Daemon.ProbeAfter(),
			PaceBelow: cfg.Daemon.PaceShare(), Groups: groups}, specs[name])
	}
	return s
}

// Provider resolves a route's provider: one with keys, or a known one
// without (to say "no keys" rather than "unknown").
func (s *Snapshot) Provider(name string) (*Upstream, bool) {
	if u, ok := s.Providers[name]; ok {
		return u, true
	}
	p, ok := s.Config.Provider(name)
	if !ok {
		return nil, false
	}
	return &Upstream{Provider: p}, true
}
