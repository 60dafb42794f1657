// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// UsageCommandInput is what "llmkey usage" was asked to do.
type UsageCommandInput struct {
	Paths state.Paths
	Since string // a duration (36h, 7d) or a UTC date; empty: everything
	By    []string
	JSON  bool
	Chart bool // one chart of the period instead of the table
	Now   time.Time
}

var usageDims = []string{"key", "model", "day", "provider", "label"}

func ConfigureUsageCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "usage",
		Usage: "show requests, tokens and cost per key, model and day",
		Description: "Works with or without the daemon: from the daemon's memory when it runs, else from the usage files (usage.json, usage-recent.json) in the " +
			"state directory. Usage is counted per key, model and UTC day; --since takes a duration (36h, 7d), counted " +
			"back to the start of that UTC day, or a date (2026-11-01). Cost is computed from the keyfile's " +
			"[pricing.\"MODEL\"] tables (dollars per million tokens: input, output, cache_read, cache_write); a model " +
			"without a price shows its cost as unknown. REFUSED counts the requests llmkey answered itself (all-keys-cooling, " +
			"overloaded, ...), under the key they could only go to, else under the provider with no key. On a terminal, a report " +
			"by one dimension has a bar column: the trend of --by day, each row's share of the spend otherwise; --chart draws " +
			"the period on the whole width instead of the table. --json prints {source, since, by, rows: [...], total, " +
			"unpriced_models}; a row's refused counts them by code.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "since", Usage: "only from `WHEN` on: a duration such as 7d or 36h, a date such as 2026-11-01 (UTC), today or yesterday"},
			&ucli.StringFlag{Name: "by", Value: "key,model", Usage: "group rows by `WHAT`: key, model, day, provider, label, or several with commas"},
			&ucli.BoolFlag{Name: "json", Usage: "print JSON for scripts"},
			&ucli.BoolFlag{Name: "chart", Usage: "draw the period on the whole width: spend per day (--by day), or a bar per row"},
			&ucli.BoolFlag{Name: "wide", Usage: "on a terminal, print every column whole, however wide"},
			noColorFlag(),
		},
		Action: withPaths(func(c *ucli.Context, p state.Paths) error {
			by, err := parseBy(c.String("by"))
			if err != nil {
				return err
			}
			return UsageCommand(c.Context, UsageCommandInput{Paths: p, Since: c.String("since"), By: by, JSON: c.Bool("json"), Chart: c.Bool("chart"), Now: time.Now()}, streams(c))
		}),
	})
}

func parseBy(s string) ([]string, error) {
	var by []string
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(d)
		if !slices.Contains(usageDims, d) {
			return nil, usageError("--by takes key, model, day, provider, label, or several with commas (--by day,key)", "unknown --by %q", d)
		}
		if !slices.Contains(by, d) {
			by = append(by, d)
		}
	}
	return by, nil
}

// sinceDay turns --since into the first UTC day to count, or "": a
// duration (counted back to the start of that UTC day), a date, today or
// yesterday.
func sinceDay(s string, now time.Time) (string, error) {
	switch s {
	case "":
		return "", nil
	case "today":
		return state.Day(now), nil
	case "yesterday":
		return state.Day(now.Add(-24 * time.Hour)), nil
	}
	if t, err := time.Parse(state.DayFormat, s); err == nil {
		return state.Day(t), nil
	}
	d, err := state.ParseDuration(s)
	if err != nil || d < 0 {
		return "", usageError("--since takes a duration such as 7d or 36h, a date such as 2026-11-01, today or yesterday", "cannot read --since %q", s)
	}
	return state.Day(now.Add(-d)), nil
}

// usageLine is one row of the report, and one object of its --json.
type usageLine struct {
	Provider    string `json:"provider,omitempty"`
	Key         string `json:"key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Model       string `json:"model,omitempty"`
	Day         string `json:"day,omitempty"`
	Label       string `json:"label,omitempty"`
	state.Counts
	// CostUSD is null when a model in the row has no price;
	// CostAtLeastUSD is then what the priced part cost.
	CostUSD        *float64 `json:"cost_usd"`
	CostAtLeastUSD *float64 `json:"cost_at_least_usd,omitempty"`
	UnpricedModels []string `json:"unpriced_models,omitempty"`
}

type usageReport struct {
	Source         string      `json:"source"` // "daemon" or the state dir it was read from
	Since          string      `json:"since,omitempty"`
	By             []string    `json:"by"`
	Rows           []usageLine `json:"rows"`
	Total          usageLine   `json:"total"`
	UnpricedModels []string    `json:"unpriced_models"`
	PricingError   string      `json:"pricing_error,omitempty"`
}

// UsageCommand prints usage, from the daemon if it runs, else the file.
func UsageCommand(ctx context.Context, in UsageCommandInput, s Streams) error {
	since, err := sinceDay(in.Since, in.Now)
	if err != nil {
		return err
	}
	var rows []state.UsageRow
	var pricing map[string]state.Price
	rep := usageReport{Since: since, By: in.By, Source: "daemon"}
	if live, err := control.NewClient(in.Paths).Usage(ctx); err == nil {
		rows, pricing = live.Rows, live.Pricing
	} else if !errors.Is(err, control.ErrNotRunning) {
		return err
	} else {
		u, err := state.LoadUsageDir(in.Paths.StateDir)
		if err != nil {
			return err // a damaged file says how to fix it
		}
		rows, rep.Source = u.Rows, in.Paths.StateDir
		cfg, err := state.Load(in.Paths.Keyfile)
		if err != nil {
			rep.PricingError = err.Error()
		} else {
			pricing = cfg.Pricing
		}
	}
	rep.Rows, rep.Total = aggregate(rows, since, in.By, pricing)
	rep.UnpricedModels = rep.Total.UnpricedModels
	if rep.UnpricedModels == nil {
		rep.UnpricedModels = []string{}
	}

	if in.JSON {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if in.Chart {
		printUsageChart(s.Out, rep, s.Look)
		return nil
	}
	printUsage(s, rep)
	return nil
}

// aggregate sums rows from since on, grouped by the dimensions in by, and
// prices each row by its own model.
func aggregate(rows []state.UsageRow, since string, by []string, pricing map[string]state.Price) ([]usageLine, usageLine) {
	groups := map[state.UsageKey]*usageGroup{}
	total := &usageGroup{unpriced: map[string]bool{}}
	for _, r := range rows {
		if since != "" && r.Day < since {
			continue
		}
		id := groupOf(r, by)
		g := groups[id]
		if g == nil {
			g = &usageGroup{unpriced: map[string]bool{}}
			groups[id] = g
		}
		// A model without a price has a zero Price, whose cost is
		// unknown as soon as it used any token.
		price, _ := state.PriceFor(pricing, r.Model)
		cost, known := price.Cost(r.Counts)
		g.add(r, cost, known)
		total.add(r, cost, known)
	}
	lines := []usageLine{}
	for _, id := range slices.SortedFunc(maps.Keys(groups), state.UsageKey.Compare) {
		lines = append(lines, groups[id].line(id))
	}
	return lines, total.line(state.UsageKey{})
}

// groupOf is the group r counts in: its dimensions in by, the others
// empty.
func groupOf(r state.UsageRow, by []string) state.UsageKey {
	var id state.UsageKey
	for _, d := range by {
		switch d {
		case "key":
			id.Provider, id.Key, id.Fingerprint = r.Provider, r.Key, r.Fingerprint
		case "model":
			id.Model = modelName(r.Model)
		case "day":
			id.Day = r.Day
		case "provider":
			id.Provider = r.Provider
		case "label":
			id.Label = labelName(r.Label)
		}
	}
	return id
}

// usageGroup is the sum of the rows of one group: counts, the cost of
// those priced, and the models without a price.
type usageGroup struct {
	counts   state.Counts
	cost     float64
	unpriced map[string]bool
}

func (g *usageGroup) add(r state.UsageRow, cost float64, known bool) {
	g.counts.Add(r.Counts)
	if known {
		g.cost += cost
	} else {
		g.unpriced[modelName(r.Model)] = true
	}
}

// line is the group's row of the report: its cost, or at least what
// its priced part cost and the models without a price.
func (g *usageGroup) line(id state.UsageKey) usageLine {
	l := usageLine{Provider: id.Provider, Key: id.Key, Fingerprint: id.Fingerprint, Model: id.Model, Day: id.Day, Label: id.Label, Counts: g.counts}
	if l.Failures == nil {
		l.Failures = map[string]int64{}
	}
	cost := g.cost
	if len(g.unpriced) == 0 {
		l.CostUSD = &cost
	} else {
		l.CostAtLeastUSD = &cost
		l.UnpricedModels = slices.Sorted(maps.Keys(g.unpriced))
	}
	return l
}

// labelName shows requests of the unscoped token, which have no label.
func labelName(l string) string {
	if l == "" {
		return "(none)"
	}
	return l
}

// modelName shows a request that named no model (a model list, say).
func modelName(m string) string {
	if m == "" {
		return "(none)"
	}
	return m
}

func printUsage(s Streams, rep usageReport) {
	w := s.Out
	if len(rep.Rows) == 0 {
		s.info("no usage recorded%s", map[bool]string{true: " since " + rep.Since, false: ""}[rep.Since != ""])
		return
	}
	t := usageTable(rep.By)
	line := func(l usageLine, label []string) {
		t.add(append(label, num(l.Requests), num(l.Successes), num(l.FailureCount()), num(l.Partial), num(l.Input), num(l.Output),
			num(l.CacheRead), num(l.CacheWrite), num(l.Reasoning), cost(l.CostUSD, l.CostAtLeastUSD), num(l.RefusedCount()))...)
	}
	for _, l := range rep.Rows {
		line(l, usageLabel(l, rep.By))
	}
	if len(rep.Rows) > 1 {
		label := make([]string, len(rep.By))
		label[0] = "TOTAL"
		for i := 1; i < len(label); i++ {
			label[i] = "-"
		}
		line(rep.Total, label)
	}
	printUsageTable(w, t, rep, s.Look)
	usageFootnotes(w, rep, s.Look.Width)
}

// usageTable is the report's empty table: labels left, numbers right,
// one word per header. A narrow terminal does without PARTIAL,
// CACHE_WRITE, OK, REASONING and CACHE_READ, in that order (see --wide),
// then cuts the labels.
func usageTable(by []string) *table {
	n := len(by)
	t := &table{right: map[int]bool{}, shrink: map[int]bool{}}
	for i, d := range by {
		t.head = append(t.head, strings.ToUpper(d))
		t.shrink[i] = true
	}
	t.head = append(t.head, "REQUESTS", "OK", "FAILED", "PARTIAL", "INPUT", "OUTPUT", "CACHE_READ", "CACHE_WRITE", "REASONING", "COST", "REFUSED")
	for i := n; i < len(t.head); i++ {
		t.right[i] = true
	}
	t.optional = []int{n + 3, n + 7, n + 1, n + 8, n + 6}
	return t
}

// usageLabel is the cells that name l's group, one per dimension of by.
func usageLabel(l usageLine, by []string) []string {
	var label []string
	for _, d := range by {
		var v string
		switch d {
		case "key":
			v = usageKey(l)
		case "model":
			v = termSafe(l.Model)
		case "day":
			v = l.Day
		case "provider":
			v = l.Provider
		case "label":
			v = termSafe(l.Label)
		}
		label = append(label, v)
	}
	return label
}

func num(n int64) string { return strconv.FormatInt(n, 10) }

// cost is a row's cost; at least that much where a model has no price.
func cost(c, atLeast *float64) string {
	switch {
	case c != nil:
		return fmt.Sprintf("$%.4f", *c)
	case atLeast != nil && *atLeast > 0:
		return fmt.Sprintf(">=$%.4f", *atLeast)
	}
	return "?"
}
