// SPDX-License-Identifier: MIT

package daemon

import (
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// ledger is the daemon's usage: the truth, in memory. The usage files in
// the state dir are its copy, written by the keeper.
type ledger struct {
	// changed is signalled (without blocking) when the counts change, so
	// that the keeper writes them without looking every moment.
	changed chan struct{}
	mu      sync.Mutex
	rows    map[state.UsageKey]*state.Counts
	gen     uint64 // bumped on every change
	// The UTC day of the last count, so that a request does not format a
	// date.
	dayNum int64
	day    string
	log    *slog.Logger
	// clamped: an answer's counts were out of range, and the log said so
	// (once: a provider that gets it wrong gets it wrong every time).
	clamped bool
	// renamed: the names keys had before a rename, with the secret they
	// had then, and their new name: an answer that began before the
	// rename is counted under the new one. histGen counts the renames,
	// which change rows of the days before yesterday too: the keeper
	// then writes those.
	renamed map[state.UsageKey]string
	histGen uint64
}

// newLedger starts from rows read from disk: generation 0, as on disk.
func newLedger(log *slog.Logger, rows []state.UsageRow) *ledger {
	l := &ledger{changed: make(chan struct{}, 1), log: log}
	l.load(rows)
	return l
}

// load replaces every row by rows read from disk: generation 0, as on
// disk.
func (l *ledger) load(rows []state.UsageRow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rows, l.gen = make(map[state.UsageKey]*state.Counts, len(rows)), 0
	for _, r := range rows {
		l.count(r.UsageKey, r.Counts)
	}
}

// Add counts c, one answer's counts, under k on the UTC day of now. A
// count out of range (below 0, over state.MaxAnswerTokens) is counted as
// the bound it passed, and the first one is logged.
func (l *ledger) Add(now time.Time, k state.UsageKey, c state.Counts) {
	reported := c
	out := c.Clamp(state.MaxAnswerTokens)
	l.mu.Lock()
	if n := now.Unix() / 86400; n != l.dayNum || l.day == "" {
		l.dayNum, l.day = n, state.Day(now)
	}
	k.Day = l.day
	if to, ok := l.renamed[state.UsageKey{Provider: k.Provider, Key: k.Key, Fingerprint: k.Fingerprint}]; ok {
		k.Key = to
	}
	l.count(k, c)
	l.gen++
	first := out && !l.clamped
	l.clamped = l.clamped || out
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	if first && l.log != nil {
		l.log.Warn("an answer reported token counts out of range (below 0, or over 10^9); each counts as the bound it passed (logged once)",
			"provider", k.Provider, "key", k.Key, "model", k.Model, "input", reported.Input, "output", reported.Output,
			"cache_read", reported.CacheRead, "cache_write", reported.CacheWrite, "reasoning", reported.Reasoning)
	}
}

// count adds c to k's row, which holds at state.MaxDayCount. The caller
// holds l.mu.
func (l *ledger) count(k state.UsageKey, c state.Counts) {
	r := l.row(k)
	r.Add(c)
	r.Clamp(state.MaxDayCount)
}

// row is k's counts, made when new.
func (l *ledger) row(k state.UsageKey) *state.Counts {
	c := l.rows[k]
	if c == nil {
		c = &state.Counts{}
		l.rows[k] = c
	}
	return c
}

// generation changes whenever the counts do.
func (l *ledger) generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// snapshot copies every row, and the generation it is of.
func (l *ledger) snapshot() ([]state.UsageRow, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rows := make([]state.UsageRow, 0, len(l.rows))
	for k, c := range l.rows {
		rows = append(rows, state.UsageRow{UsageKey: k, Counts: c.Copy()})
	}
	return rows, l.gen
}

// cacheReads sums the cached input tokens each key (PROVIDER/NAME) read
// on day, without copying the rows (status asks it at every call).
func (l *ledger) cacheReads(day string) map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int64{}
	for k, c := range l.rows {
		if k.Day == day && c.CacheRead > 0 {
			out[k.Provider+"/"+k.Key] += c.CacheRead
		}
	}
	return out
}

// seeds are what each key (by provider, name and fingerprint) spent at
// now's UTC day and month, by rows: requests and tokens today, and their
// cost at prices (a model without one costs nothing, as it does live).
func seeds(rows []state.UsageRow, now time.Time, prices *state.Prices) map[state.UsageKey]rotate.Seed {
	type spent struct {
		today           state.Counts
		costDay, costMo float64
	}
	today := state.Day(now)
	month := today[:len("2006-01")]
	sums := map[state.UsageKey]*spent{}
	for _, r := range rows {
		if r.Key == "" || !strings.HasPrefix(r.Day, month) || r.Day > today {
			continue
		}
		id := state.UsageKey{Provider: r.Provider, Key: r.Key, Fingerprint: r.Fingerprint}
		s := sums[id]
		if s == nil {
			s = &spent{}
			sums[id] = s
		}
		price, _ := prices.For(r.Model)
		cost, known := price.Cost(r.Counts)
		if !known {
			cost = 0
		}
		s.costMo += cost
		if r.Day == today {
			s.today.Add(r.Counts)
			s.costDay += cost
		}
	}
	out := make(map[state.UsageKey]rotate.Seed, len(sums))
	for id, s := range sums {
		out[id] = rotate.Seed{Requests: int(s.today.Requests), Tokens: int(s.today.Tokens()),
			CostToday: nanoUSD(s.costDay), CostMonth: nanoUSD(s.costMo)}
	}
	return out
}

// nanoUSD is dollars in rotate's unit, held below the largest int64.
func nanoUSD(usd float64) int64 {
	return int64(min(math.Round(usd*rotate.NanoUSD), math.MaxInt64/2))
}

// rename moves the rows of provider's key from, every day's, to the name
// to, and counts under to what is still to come from a request that
// began before (on the secret fingerprint): a renamed key keeps its
// history.
func (l *ledger) rename(provider, from, to, fingerprint string) {
	l.mu.Lock()
	rows := make([]state.UsageRow, 0, len(l.rows))
	for k, c := range l.rows {
		rows = append(rows, state.UsageRow{UsageKey: k, Counts: *c})
	}
	rows, moved := state.RenameUsage(rows, provider, from, to)
	if moved {
		l.rows = make(map[state.UsageKey]*state.Counts, len(rows))
		for _, r := range rows {
			c := r.Counts
			l.rows[r.UsageKey] = &c
		}
		l.gen++
		l.histGen++
	}
	if l.renamed == nil {
		l.renamed = map[state.UsageKey]string{}
	}
	l.renamed[state.UsageKey{Provider: provider, Key: from, Fingerprint: fingerprint}] = to
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// historyGeneration changes whenever a rename changed rows of any day.
func (l *ledger) historyGeneration() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.histGen
}
