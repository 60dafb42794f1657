// SPDX-License-Identifier: MIT

package daemon

import (
	"maps"
	"slices"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/rotate"
)

// history is GET /v1/history: each pool's last hour, as rotate keeps it.
func (d *Daemon) history() control.History {
	snap := d.snap.Load()
	h := control.History{Minutes: rotate.HistoryMinutes, Providers: map[string]control.ProviderHistory{}}
	for _, name := range slices.Sorted(maps.Keys(snap.Providers)) {
		up := snap.Providers[name]
		if up.Pool == nil {
			continue
		}
		keys, prov, at := up.Pool.History()
		h.At = at
		ph := control.ProviderHistory{Refused: make([]int, len(prov)), Keys: make([]control.KeyHistory, 0, len(keys))}
		for i, m := range prov {
			ph.Refused[i] = m.Refused
		}
		for _, k := range keys {
			ph.Keys = append(ph.Keys, keyHistory(k))
		}
		h.Providers[name] = ph
	}
	return h
}

// keyHistory is one key's hour in the control API's shape.
func keyHistory(k rotate.KeyHistory) control.KeyHistory {
	n := len(k.Minutes)
	kh := control.KeyHistory{Name: k.Name, Requests: make([]int, n), Tokens: make([]int64, n), CostUSD: make([]float64, n),
		Refused: make([]int, n), Failures: map[string][]int{}}
	for f := range rotate.FailureKinds {
		kh.Failures[f.String()] = make([]int, n)
	}
	aside := make([]byte, n)
	for i, m := range k.Minutes {
		kh.Requests[i], kh.Tokens[i], kh.Refused[i] = m.Requests, m.Tokens, m.Refused
		kh.CostUSD[i] = float64(m.Cost) / rotate.NanoUSD
		for f, c := range m.Failures {
			kh.Failures[rotate.FailureKind(f).String()][i] = c
		}
		switch {
		case m.Cooling && m.Parked:
			aside[i] = 'b'
		case m.Cooling:
			aside[i] = 'c'
		case m.Parked:
			aside[i] = 'p'
		default:
			aside[i] = '.'
		}
	}
	kh.Aside = string(aside)
	return kh
}
