package daemon

import (
	"sync"

	"github.com/llmkey/llmkey/state"
)

// ledger is the daemon's usage: the truth, in memory. The usage files in
// the state dir are its copy, written by the keeper.
type ledger struct {
	mu   sync.Mutex
	rows map[state.UsageKey]*state.Counts
	gen  uint64 // bumped on every change
}

func newLedger(rows []state.UsageRow) *ledger {
	l := &ledger{rows: make(map[state.UsageKey]*state.Counts, len(rows))}
	for _, r := range rows {
		l.add(r.UsageKey, r.Counts)
	}
	l.gen = 0
	return l
}

// add counts c under k.
func (l *ledger) add(k state.UsageKey, c state.Counts) {
	l.mu.Lock()
	row := l.rows[k]
	if row == nil {
		row = &state.Counts{}
		l.rows[k] = row
	}
	row.Add(c)
	l.gen++
	l.mu.Unlock()
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
		cp := *c
		if c.Failures != nil {
			cp.Failures = make(map[string]int64, len(c.Failures))
			for f, n := range c.Failures {
				cp.Failures[f] = n
			}
		}
		rows = append(rows, state.UsageRow{UsageKey: k, Counts: cp})
	}
	return rows, l.gen
}

// today sums what each key (by provider, name and fingerprint) spent on
// day, for the daily budgets after a restart.
func (l *ledger) today(day string) map[state.UsageKey]state.Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[state.UsageKey]state.Counts{}
	for k, c := range l.rows {
		if k.Day != day {
			continue
		}
		id := state.UsageKey{Provider: k.Provider, Key: k.Key, Fingerprint: k.Fingerprint}
		sum := out[id]
		sum.Add(*c)
		out[id] = sum
	}
	return out
}
