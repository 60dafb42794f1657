// SPDX-License-Identifier: MIT

package control

import (
	"time"

	"github.com/llmkey/llmkey/state"
)

// The control API: HTTP over the UNIX socket, JSON, versioned paths.
//
//	GET  /v1/status  Status
//	GET  /v1/env     Env: proxy URL, local token, providers with keys
//	GET  /v1/usage   UsageReport
//	GET  /v1/history History: each key's last hour, minute by minute
//	POST /v1/reload  re-read the keyfile now; Status
//	POST /v1/stop    drain and exit; 202 at once
//	POST /v1/keys/{provider}/{name}/disable  {"for": "1h"} or {}; KeyStatus
//	     ("for": a duration string, positive, at most MaxDisableFor; 400 else)
//	POST /v1/keys/{provider}/{name}/enable   KeyStatus
//	POST /v1/keys/{provider}/{name}/reset    KeyStatus
//	POST /v1/keys/{provider}/{name}/checked  KeyCheck; KeyStatus (409 when the key's
//	     secret is no longer the one checked)
//	POST /v1/keys/{provider}/{name}/rename   RenameRequest; 202: the load that
//	     serves the keyfile with the new name carries the key's state,
//	     usage and scoped tokens over (announced before the keyfile edit)
//	POST /v1/tokens              TokenRequest; Token (a scoped token, shown once)
//	GET  /v1/tokens              [TokenInfo]
//	POST /v1/tokens/{id}/revoke  TokenChange (200 once revoked, even when not yet on disk)
//	POST /v1/tokens/prune        ?dry_run=1 to only count; TokenChange
//
// Scripts may use it too: curl --unix-socket "$SOCK" http://llmkey/v1/status

// MaxDisableFor is the longest disable --for: a key meant out for longer
// is disabled until enabled.
const (
	MaxDisableFor     = 100 * 365 * 24 * time.Hour
	MaxDisableForText = "100 years (36500d)"
)

// KeyCheck is what a check of a key made outside the proxy (llmkey test)
// found, for the daemon to act on as on the same answer to a request: a
// success brings a parked key back, an invalid key or a spent quota
// parks it, a rate limit cools it. Fingerprint names the secret checked:
// the daemon ignores a check of a secret it no longer serves.
type KeyCheck struct {
	Fingerprint string `json:"fingerprint"`
	// Class is a rotate class: success, rate-limited, quota,
	// invalid-key (the others change nothing).
	Class  string     `json:"class"`
	Status int        `json:"status,omitempty"`
	Reason string     `json:"reason,omitempty"`
	Wait   float64    `json:"wait_seconds,omitempty"` // a rate limit's
	Until  *time.Time `json:"until,omitempty"`        // a quota's known return
}

// RenameRequest announces that a key is being renamed to To.
type RenameRequest struct {
	To string `json:"to"`
}

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
	// Log is where the daemon's log goes.
	Log *LogStatus `json:"log,omitempty"`
	// SocketActivated: the daemon serves the sockets a service manager
	// handed over, which start it again at the next connection.
	SocketActivated bool `json:"socket_activated,omitempty"`
	// Spawned: the CLI started the daemon (llmkey start, exec), not a
	// service manager nor a user by hand.
	Spawned bool `json:"spawned,omitempty"`
	// Problems says in words why the daemon is degraded; empty when healthy.
	Problems []string `json:"problems"`
}

// LogStatus is where the daemon's log goes: to a file (Path: daemon.log,
// or the file a service manager points its standard error at), to
// systemd's journal (JournalUnit: the unit it runs as), or else, both
// empty, to a standard error that is no file (a terminal, a pipe).
type LogStatus struct {
	Path        string `json:"path,omitempty"`
	JournalUnit string `json:"journal_unit,omitempty"`
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
	// ServingLastGood: with Error set, an earlier keyfile still serves.
	ServingLastGood bool `json:"serving_last_good,omitempty"`
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
	// Sessions is how many conversations are kept on a key; Fallback,
	// the providers that serve what no key of this one can.
	Sessions int      `json:"sessions"`
	Fallback []string `json:"fallback,omitempty"`
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
	CooldownSeconds float64    `json:"cooldown_seconds"`
	Until           *time.Time `json:"until,omitempty"`
	Reason          string     `json:"reason,omitempty"`
	// Action is set when the key stays out until its owner acts (an
	// invalid key, no quota, a forbidden model): what to do.
	Action         string    `json:"action,omitempty"`
	InFlight       int       `json:"in_flight"`
	RequestsMinute int       `json:"requests_last_minute"`
	TokensMinute   int       `json:"tokens_last_minute"`
	RequestsToday  int       `json:"requests_today"`
	TokensToday    int       `json:"tokens_today"`
	Failures       []Failure `json:"recent_failures"`
	// Group is the key's group (keys sharing an organisation's quota).
	Group string `json:"group,omitempty"`
	// AffinityHits counts requests of a conversation that came back to
	// this key; AffinityMoves, conversations that moved to it because
	// their key could not serve (both since the daemon started).
	// CacheReadToday is the cached input tokens it read today (UTC):
	// what keeping conversations on their key saves.
	AffinityHits   uint64 `json:"affinity_hits"`
	AffinityMoves  uint64 `json:"affinity_moves"`
	CacheReadToday int64  `json:"cache_read_tokens_today"`
	// ScarceUntil is set while the key said it is nearly spent (under
	// [daemon] pace_below of a limit): it gets requests only when no
	// other key can take them, until then.
	ScarceUntil *time.Time `json:"scarce_until,omitempty"`
	// CostTodayUSD and CostMonthUSD are what its answers cost today and
	// this month (UTC) at the built-in and [pricing] prices; the budgets
	// are the keyfile's (absent: none).
	CostTodayUSD   float64 `json:"cost_today_usd"`
	CostMonthUSD   float64 `json:"cost_month_usd"`
	BudgetUSDDay   float64 `json:"budget_usd_day,omitempty"`
	BudgetUSDMonth float64 `json:"budget_usd_month,omitempty"`
	// UnpricedModel is a model without a price the key served today:
	// its answers counted $0 toward the budgets.
	UnpricedModel string `json:"unpriced_model,omitempty"`
	// QuotaLeft is the smallest share of a rate limit (requests or
	// tokens) the provider's headers said is left after its last answer,
	// until QuotaResets; absent when they said nothing.
	QuotaLeft   *float64   `json:"quota_left,omitempty"`
	QuotaResets *time.Time `json:"quota_resets,omitempty"`
}

// Failure is one recent failure of a key.
type Failure struct {
	At     time.Time `json:"at"`
	Class  string    `json:"class"`
	Status int       `json:"status,omitempty"`
	Model  string    `json:"model,omitempty"`
	Reason string    `json:"reason"`
}

// Env is what "llmkey exec" and "llmkey env" need.
type Env struct {
	ProxyURL  string   `json:"proxy_url"`
	Token     string   `json:"token"`
	Providers []string `json:"providers"` // those with at least one key
	Version   string   `json:"version"`
	// Keyfile is the keyfile the daemon serves.
	Keyfile string `json:"keyfile"`
	// Problems are status's: why a tool may not be served.
	Problems []string `json:"problems"`
}

// StateStatus is the state dir in "status --json".
type StateStatus struct {
	Dir string `json:"dir"`
	// PersistedAt is the last time everything was written to disk.
	PersistedAt *time.Time `json:"persisted_at,omitempty"`
	// FailingSince is set while writes fail: since then, the daemon's
	// counts live only in memory.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	Error        string     `json:"error,omitempty"`
	Notice       string     `json:"notice,omitempty"`
}

// TokenRequest asks for a scoped token: for the keys named, and those
// with any of the tags (neither: every key), counted under Label.
type TokenRequest struct {
	Keys  []string `json:"keys,omitempty"` // PROVIDER/NAME
	Tags  []string `json:"tags,omitempty"`
	Label string   `json:"label,omitempty"`
	TTL   string   `json:"ttl,omitempty"` // a duration; empty: see EndWithCaller
	// EndWithCaller: without a TTL, the token ends when the process that
	// asked for it (the peer on the control socket) has exited, as exec
	// becomes its command. Where the daemon cannot tell when that process
	// started, and without it, the token ends after DefaultTokenTTL.
	EndWithCaller bool `json:"end_with_caller,omitempty"`
}

// DefaultTokenTTL is how long a scoped token lives that has neither a
// TTL nor a process to end with (env's): longer than most shell
// sessions, short enough that one left in a log or a scrollback stops
// working.
const DefaultTokenTTL = 7 * 24 * time.Hour

// TokenState is where a scoped token is in its life. Only a live one is
// served; the others are kept until pruned, to say what became of them.
type TokenState string

const (
	TokenLive    TokenState = "live"
	TokenExpired TokenState = "expired" // past its expiry
	TokenEnded   TokenState = "ended"   // the process it ends with has exited
	TokenRevoked TokenState = "revoked"
)

// TokenInfo is one scoped token, without the token.
type TokenInfo struct {
	ID      string     `json:"id"`
	Label   string     `json:"label,omitempty"`
	Keys    []string   `json:"keys"`
	Tags    []string   `json:"tags,omitempty"`
	Created time.Time  `json:"created"`
	State   TokenState `json:"state"`
	Expires *time.Time `json:"expires,omitempty"`
	Expired bool       `json:"expired,omitempty"`
	// PID is the process the token ends with (0: none).
	PID     int        `json:"pid,omitempty"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// Token is a scoped token just issued: the only time it is shown.
type Token struct {
	Token string `json:"token"`
	TokenInfo
}

// TokenChange is what a revoke or a prune did: the tokens it revoked or
// removed (a dry run: would remove), and whether that is on disk. Not
// persisted, the change holds in the daemon's memory and the daemon
// writes it once the state dir takes writes again; a restart before
// that would undo it.
type TokenChange struct {
	Tokens    []TokenInfo `json:"tokens"`
	Persisted bool        `json:"persisted"`
	// Error is why it is not on disk yet; Path, the file it goes to.
	Error string `json:"error,omitempty"`
	Path  string `json:"path"`
}

// History is GET /v1/history: the last hour of each provider and key,
// a number per minute, oldest first; the last is the minute of At,
// still counting.
type History struct {
	At      time.Time `json:"at"`
	Minutes int       `json:"minutes"`
	// Providers, by name: their keys in keyfile order, and what was
	// refused with no key to name.
	Providers map[string]ProviderHistory `json:"providers"`
}

// ProviderHistory is one provider's last hour.
type ProviderHistory struct {
	Refused []int        `json:"refused"`
	Keys    []KeyHistory `json:"keys"`
}

// KeyHistory is one key's last hour: attempts sent, tokens, cost,
// failures by kind (rate_limited; key: quota, invalid-key, forbidden;
// upstream: overloaded, server-error, transport), requests refused that
// could only go to it, and Aside, a letter a minute: "c" it was cooling
// for some of the minute, "p" parked, "b" both, "." neither.
type KeyHistory struct {
	Name     string           `json:"name"`
	Requests []int            `json:"requests"`
	Tokens   []int64          `json:"tokens"`
	CostUSD  []float64        `json:"cost_usd"`
	Failures map[string][]int `json:"failures"`
	Refused  []int            `json:"refused"`
	Aside    string           `json:"aside"`
}
