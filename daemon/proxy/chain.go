// SPDX-License-Identifier: MIT

package proxy

import (
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// FallbackResult is what a fallback chain did with a request, for
// metrics: it began waiting for its primary, the primary served it after
// all, a fallback took it, or the fallbacks could not serve it either.
type FallbackResult string

const (
	Entered   FallbackResult = "entered"
	Recovered FallbackResult = "recovered"
	FellBack  FallbackResult = "fell_back"
	Exhausted FallbackResult = "exhausted"
)

// chain is a request's way along its provider's fallbacks: the provider
// it is on now (its own, or a fallback), with what it tried there, and
// the fallbacks left. It tells rotate.Decide where the request stands,
// and metrics what came of it.
type chain struct {
	h       *Handler
	q       *request
	primary *Upstream
	legs    []*Upstream // the fallbacks not tried yet
	// The provider the request is on, and there: the model's name, the
	// keys a selection allows (nil: all), the label, the keys not to take
	// again, the attempts sent and the budget they are held to.
	up     *Upstream
	model  string
	only   map[string]bool
	label  string
	tried  []string
	n      int
	budget rotate.Budget
	// waitingSince is when the wait for the primary began (zero: not
	// yet); entered, whether metrics heard that the chain began.
	waitingSince time.Time
	entered      bool
}

// chain starts q on up, with up's fallbacks that may serve it: those
// with keys, of up's kind, in the token's selection, and that the
// attempter can carry the request to. A conversation whose state is
// stored upstream has none: only its key can read that.
func (h *Handler) chain(q *request, up *Upstream, at attempter) *chain {
	c := &chain{h: h, q: q, primary: up, up: up, model: q.model, tried: q.tried, budget: budget(q.snap.Config.Daemon, q.start)}
	c.only, c.label = q.grant.selection(up.Name)
	if q.pinned {
		return c
	}
	for _, name := range up.Fallback {
		fb := q.snap.Providers[name]
		if fb == nil || fb.Pool == nil || fb.Kind != up.Kind || (q.grant != nil && q.grant.Only[name] == nil) || !at.carries(up, fb, q.model) {
			continue
		}
		c.legs = append(c.legs, fb)
	}
	return c
}

// budget is what a request may spend on one provider from start.
func budget(dc state.DaemonConfig, start time.Time) rotate.Budget {
	return rotate.Budget{Start: start, MaxAttempts: dc.Attempts(), RetryDeadline: dc.RetryWindow(), MaxWait: dc.WaitLimit()}
}

// decide asks rotate.Decide what the request does after t, and keeps
// what the chain must remember of it: when the wait for the primary
// began, and that the chain began (for metrics).
func (c *chain) decide(t rotate.Turn) rotate.Decision {
	now := c.h.Clock.Now()
	r := rotate.Route{Fallbacks: len(c.legs), OnPrimary: c.up == c.primary, PrimaryWait: c.primary.PrimaryWait, WaitingSince: c.waitingSince}
	d := rotate.Decide(c.budget, r, t, now)
	switch d.Step {
	case rotate.WaitPrimary:
		if c.waitingSince.IsZero() {
			c.waitingSince = now
		}
		c.enter()
	case rotate.FallOver:
		c.enter()
	}
	return d
}

// fallOver moves the request to the next fallback: the model renamed,
// its attempts and waits counted afresh there.
func (c *chain) fallOver(at attempter) {
	fb := c.legs[0]
	c.legs = c.legs[1:]
	c.model = at.enter(c.primary, fb, c.q.model)
	c.q.log.Info("falling over", "from", c.primary.Name, "to", fb.Name, "model", c.model)
	c.up, c.tried, c.n = fb, nil, 0
	c.only, _ = c.q.grant.selection(fb.Name)
	c.budget.Start = c.h.Clock.Now()
}

// enter tells metrics, once, that the request began its way along the
// chain (waiting for the primary, or falling over at once).
func (c *chain) enter() {
	if !c.entered && len(c.legs) > 0 {
		c.entered = true
		c.h.Events.Fallback(c.primary.Name, c.legs[0].Name, Entered)
	}
}

// served counts a success: a fallback's, or the primary's after the
// chain began.
func (c *chain) served() {
	switch {
	case c.up != c.primary:
		c.h.Events.Fallback(c.primary.Name, c.up.Name, FellBack)
	case c.entered:
		c.h.Events.Fallback(c.primary.Name, "", Recovered)
	}
}

// answered counts a request answered without success: on a fallback,
// the chain was exhausted.
func (c *chain) answered() {
	if c.up != c.primary {
		c.h.Events.Fallback(c.primary.Name, c.up.Name, Exhausted)
	}
}

// mappedModel is the name of the client's model on a fallback of
// primary: fallback_models renames it; a model not listed keeps its name.
func mappedModel(primary *Upstream, model string) string {
	if m, ok := primary.FallbackModels[model]; ok {
		return m
	}
	return model
}
