// SPDX-License-Identifier: MIT

package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Usage is kept in two files in the state directory, so that a busy
// daemon rewrites only a small one: UsageRecentFile holds yesterday and
// today (UTC), rewritten as they change; UsageFile the days before,
// rewritten when a day ends.
func UsageFile(stateDir string) string { return filepath.Join(stateDir, "usage.json") }

// UsageRecentFile holds the rows of yesterday and today.
func UsageRecentFile(stateDir string) string { return filepath.Join(stateDir, "usage-recent.json") }

// RecentFrom is the first day UsageRecentFile holds at now.
func RecentFrom(now time.Time) string { return Day(now.Add(-24 * time.Hour)) }

// LoadUsageDir reads both usage files of a state dir into one. A row in
// both (a crash between the two writes at the end of a day) is taken from
// the recent file, which is written after the other.
func LoadUsageDir(stateDir string) (*Usage, error) {
	all := &Usage{Version: UsageVersion}
	seen := map[UsageKey]int{}
	for _, p := range []string{UsageFile(stateDir), UsageRecentFile(stateDir)} {
		u, err := LoadUsage(p)
		if err != nil {
			return nil, err
		}
		for _, r := range u.Rows {
			if i, ok := seen[r.UsageKey]; ok {
				all.Rows[i] = r
				continue
			}
			seen[r.UsageKey] = len(all.Rows)
			all.Rows = append(all.Rows, r)
		}
		all.Clamped += u.Clamped
		if u.UpdatedAt.After(all.UpdatedAt) {
			all.UpdatedAt = u.UpdatedAt
		}
	}
	return all, nil
}

// UsageVersion is the format of usage.json.
const UsageVersion = 1

// DayFormat names a usage day: a UTC date, as the providers' daily limits
// and bills count them.
const DayFormat = "2006-01-02"

// Day is the UTC day t falls in.
func Day(t time.Time) string { return t.UTC().Format(DayFormat) }

// UsageKey is what usage is counted by: a UTC day, a key (by provider,
// name and fingerprint, never by secret) and a model. A request llmkey
// refused with no key to name is counted under its provider with an
// empty key.
type UsageKey struct {
	Day         string `json:"day"`
	Provider    string `json:"provider"`
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint"`
	Model       string `json:"model"`
	// Label is the tool or project the request came from (exec --label);
	// empty for the unscoped token.
	Label string `json:"label,omitempty"`
}

// Ref is the key as people name it: PROVIDER/NAME.
func (k UsageKey) Ref() string { return k.Provider + "/" + k.Key }

// Counts are one row's numbers. Requests are the attempts sent upstream
// on the key: each ends as a success, a failure of some class, or a
// partial (an answer cut off mid-stream, counted with the tokens seen).
type Counts struct {
	Requests  int64            `json:"requests"`
	Successes int64            `json:"successes"`
	Failures  map[string]int64 `json:"failures,omitempty"`
	Partial   int64            `json:"partial,omitempty"`
	// Refused counts requests llmkey answered itself, sent upstream on
	// no key, by the code of its answer (all-keys-cooling, overloaded,
	// ...): they are not among Requests.
	Refused map[string]int64 `json:"refused,omitempty"`

	Input      int64 `json:"input_tokens"`
	Output     int64 `json:"output_tokens"`
	CacheRead  int64 `json:"cache_read_tokens"`
	CacheWrite int64 `json:"cache_write_tokens"`
	Reasoning  int64 `json:"reasoning_tokens"`
}

// MaxAnswerTokens is the most one answer counts of each kind of token:
// far above any model's context, so that only a provider's mistake (or a
// hostile upstream) reaches it. Fewer than none count as none.
const MaxAnswerTokens = 1_000_000_000

// MaxDayCount is the most one usage row (a key, model and day) counts of
// anything: the largest rpd and tpd a keyfile may set. A row at it stays
// there, and one read from a file beyond it is read as it.
const MaxDayCount = 1_000_000_000_000

// Add adds o to c. Sums are held at the largest int64 rather than wrap.
func (c *Counts) Add(o Counts) {
	c.Requests = addSat(c.Requests, o.Requests)
	c.Successes = addSat(c.Successes, o.Successes)
	c.Partial = addSat(c.Partial, o.Partial)
	c.Failures = addCounts(c.Failures, o.Failures)
	c.Refused = addCounts(c.Refused, o.Refused)
	c.Input = addSat(c.Input, o.Input)
	c.Output = addSat(c.Output, o.Output)
	c.CacheRead = addSat(c.CacheRead, o.CacheRead)
	c.CacheWrite = addSat(c.CacheWrite, o.CacheWrite)
	c.Reasoning = addSat(c.Reasoning, o.Reasoning)
}

// addCounts adds the counts of o to those of c, made when needed.
func addCounts(c, o map[string]int64) map[string]int64 {
	for k, v := range o {
		if c == nil {
			c = map[string]int64{}
		}
		c[k] = addSat(c[k], v)
	}
	return c
}

// RefusedCount is the sum of refusals of every code.
func (c Counts) RefusedCount() int64 {
	var n int64
	for _, v := range c.Refused {
		n = addSat(n, v)
	}
	return n
}

// Copy is c with maps of its own.
func (c Counts) Copy() Counts {
	c.Failures, c.Refused = maps.Clone(c.Failures), maps.Clone(c.Refused)
	return c
}

// addSat is a+b, held at the bounds of int64 instead of wrapping.
func addSat(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// Clamp holds every count of c between 0 and limit (MaxAnswerTokens for
// one answer, MaxDayCount for a row); it reports whether any was out.
func (c *Counts) Clamp(limit int64) bool {
	out := false
	for _, n := range []*int64{&c.Requests, &c.Successes, &c.Partial, &c.Input, &c.Output, &c.CacheRead, &c.CacheWrite, &c.Reasoning} {
		if v := min(max(*n, 0), limit); v != *n {
			*n, out = v, true
		}
	}
	for _, m := range []map[string]int64{c.Failures, c.Refused} {
		for k, n := range m {
			if v := min(max(n, 0), limit); v != n {
				m[k], out = v, true
			}
		}
	}
	return out
}

// FailureCount is the sum of failures of every class.
func (c Counts) FailureCount() int64 {
	var n int64
	for _, v := range c.Failures {
		n = addSat(n, v)
	}
	return n
}

// Tokens is what counts against tpm and daily budgets: everything the
// provider processed but cache reads.
func (c Counts) Tokens() int64 { return addSat(addSat(c.Input, c.Output), c.CacheWrite) }

// KeyDay sums what each key (by provider, name and fingerprint; the
// model and day left empty) spent on day: what counts toward its daily
// budgets, and what "list" shows as today.
func KeyDay(rows []UsageRow, day string) map[UsageKey]Counts {
	out := map[UsageKey]Counts{}
	for _, r := range rows {
		if r.Day != day || r.Key == "" {
			continue
		}
		id := UsageKey{Provider: r.Provider, Key: r.Key, Fingerprint: r.Fingerprint}
		sum := out[id]
		sum.Add(r.Counts)
		out[id] = sum
	}
	return out
}

// UsageRow is one key x model x day.
type UsageRow struct {
	UsageKey
	Counts
}

// Usage is the contents of usage.json.
type Usage struct {
	Version   int        `json:"version"`
	UpdatedAt time.Time  `json:"updated_at"`
	Rows      []UsageRow `json:"rows"`
	// Clamped counts the rows read with a count out of range (below 0,
	// over MaxDayCount): each such count was read as the bound it passed.
	Clamped int `json:"-"`
}

// Marshal encodes u with its rows in a stable order.
func (u *Usage) Marshal() []byte {
	slices.SortFunc(u.Rows, func(a, b UsageRow) int { return a.Compare(b.UsageKey) })
	var buf bytes.Buffer
	buf.WriteString("{\"version\":")
	fmt.Fprint(&buf, u.Version)
	buf.WriteString(",\"updated_at\":")
	t, _ := json.Marshal(u.UpdatedAt)
	buf.Write(t)
	buf.WriteString(",\"rows\":[")
	for i, r := range u.Rows {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n")
		b, _ := json.Marshal(r)
		buf.Write(b)
	}
	buf.WriteString("\n]}\n")
	return buf.Bytes()
}

// Compare orders keys by day, provider, key, fingerprint, model, then label.
func (a UsageKey) Compare(b UsageKey) int {
	for _, p := range [][2]string{{a.Day, b.Day}, {a.Provider, b.Provider}, {a.Key, b.Key}, {a.Fingerprint, b.Fingerprint}, {a.Model, b.Model}, {a.Label, b.Label}} {
		if c := strings.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

// CorruptError is a state file (usage, token, disabled keys) that cannot
// be read as one: torn by a crash, or edited by hand.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is damaged: %v", e.Path, e.Err)
}

// HintText is read by the CLI to print a "hint:" line.
func (e *CorruptError) HintText() string {
	return "the daemon sets a damaged file aside (renamed with a timestamp) when it starts: llmkey start"
}

// LoadUsage reads a usage file. A missing file is empty usage; one that
// does not parse is a *CorruptError; counts out of range are clamped
// (Usage.Clamped).
func LoadUsage(p string) (*Usage, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &Usage{Version: UsageVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	var u Usage
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, &CorruptError{Path: p, Err: err}
	}
	if u.Version != UsageVersion {
		return nil, &CorruptError{Path: p, Err: fmt.Errorf("unknown format version %d", u.Version)}
	}
	for i := range u.Rows {
		r := &u.Rows[i]
		// A row without a key counts what was refused with no key to name.
		if r.Day == "" || r.Provider == "" || (r.Key == "" && r.Requests != 0) {
			return nil, &CorruptError{Path: p, Err: fmt.Errorf("a row without day, provider or key")}
		}
		// A count no answer could make (an upstream's mistake before
		// counts were bounded, a hand edit) is not worth every other row.
		if r.Clamp(MaxDayCount) {
			u.Clamped++
		}
	}
	return &u, nil
}

// SetAside renames a damaged file out of the way, keeping it for a
// person to look at: "usage.json" becomes "usage.json.damaged-20261124T101500Z".
func SetAside(p string, now time.Time) (string, error) {
	to := p + ".damaged-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(p, to); err != nil {
		return "", err
	}
	return to, nil
}

// Price is what a model costs, in dollars per million tokens. A price not
// given is unknown, not free.
type Price struct {
	Input      *float64 `toml:"input" json:"input,omitempty"`
	Output     *float64 `toml:"output" json:"output,omitempty"`
	CacheRead  *float64 `toml:"cache_read" json:"cache_read,omitempty"`
	CacheWrite *float64 `toml:"cache_write" json:"cache_write,omitempty"`
}

// PriceFor finds a model's price: the keyfile's [pricing."MODEL"] table,
// or the first of its patterns (path.Match, e.g. "gpt-4o-mini-*") that
// matches, in name order; else the built-in price list, the same way.
func PriceFor(pricing map[string]Price, model string) (Price, bool) {
	if p, ok := priceIn(pricing, model); ok {
		return p, true
	}
	return priceIn(builtinPrices, model)
}

// Prices finds a model's price as PriceFor does, from a table compiled
// once (a keyfile load), without allocating: the request path prices
// every answer for the dollar budgets.
type Prices struct{ own, builtin priceTable }

type priceTable struct {
	exact    map[string]Price
	patterns []pricePattern // in name order
}

type pricePattern struct {
	pattern string
	price   Price
}

// NewPrices compiles the keyfile's [pricing] table (nil: none) over the
// built-in prices.
func NewPrices(pricing map[string]Price) *Prices {
	return &Prices{own: compilePrices(pricing), builtin: compilePrices(builtinPrices)}
}

func compilePrices(pricing map[string]Price) priceTable {
	t := priceTable{exact: pricing}
	for _, pat := range slices.Sorted(maps.Keys(pricing)) {
		if strings.ContainsAny(pat, "*?[") {
			t.patterns = append(t.patterns, pricePattern{pat, pricing[pat]})
		}
	}
	return t
}

// For is model's price, and whether there is one.
func (p *Prices) For(model string) (Price, bool) {
	if pr, ok := p.own.find(model); ok {
		return pr, true
	}
	return p.builtin.find(model)
}

func (t *priceTable) find(model string) (Price, bool) {
	if pr, ok := t.exact[model]; ok {
		return pr, true
	}
	for i := range t.patterns {
		if ok, _ := path.Match(t.patterns[i].pattern, model); ok {
			return t.patterns[i].price, true
		}
	}
	return Price{}, false
}

func priceIn(pricing map[string]Price, model string) (Price, bool) {
	if p, ok := pricing[model]; ok {
		return p, true
	}
	for _, pat := range slices.Sorted(maps.Keys(pricing)) {
		if ok, _ := path.Match(pat, model); ok && strings.ContainsAny(pat, "*?[") {
			return pricing[pat], true
		}
	}
	return Price{}, false
}

// Cost is what c cost at price p, in dollars; ok is false when a kind of
// token that c used has no price.
func (p Price) Cost(c Counts) (float64, bool) {
	var cost float64
	for _, part := range []struct {
		tokens int64
		price  *float64
	}{{c.Input, p.Input}, {c.Output, p.Output}, {c.CacheRead, p.CacheRead}, {c.CacheWrite, p.CacheWrite}} {
		if part.tokens == 0 {
			continue
		}
		if part.price == nil {
			return 0, false
		}
		cost += float64(part.tokens) * *part.price / 1e6
	}
	return cost, true
}
