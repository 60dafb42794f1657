// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/llmkey/llmkey/state"
)

// usage's pictures, on a terminal only: a bar column beside the table
// (the trend of --by day, the share of each key, label, model or
// provider), and --chart, the whole width for one chart of the period.

// usageSeries is what the bars of a report draw: each row's spend (at
// least what its priced part cost), or its requests when nothing had a
// price.
func usageSeries(rows []usageLine) (vals []float64, dollars bool) {
	vals = make([]float64, len(rows))
	for i, l := range rows {
		vals[i] = lineCost(l)
		dollars = dollars || vals[i] > 0
	}
	if !dollars {
		for i, l := range rows {
			vals[i] = float64(l.Requests)
		}
	}
	return vals, dollars
}

// lineCost is a row's cost, or what its priced part cost at least.
func lineCost(l usageLine) float64 {
	switch {
	case l.CostUSD != nil:
		return *l.CostUSD
	case l.CostAtLeastUSD != nil:
		return *l.CostAtLeastUSD
	}
	return 0
}

// printUsageTable prints usage's table, with a bar column at its right
// when the output is a terminal and the report is by one dimension: a
// trend by day, a share by anything else. Never wider than the terminal:
// the table gives up columns for the bars, and the bars go when it
// cannot.
func printUsageTable(w io.Writer, t *table, rep usageReport, l look) {
	if rep.Total.RefusedCount() == 0 { // a column of zeros goes first
		t.optional = append([]int{slices.Index(t.head, "REFUSED")}, t.optional...)
	}
	bars := l.Width > 0 && len(rep.By) == 1 && len(rep.Rows) > 0
	if bars {
		// The bars need room more than the token counts, which --wide
		// and --json show; the rows' names keep theirs.
		optional(t, "INPUT", "OUTPUT", "FAILED")
	}
	optional(t, "REFUSED")
	if !bars {
		t.print(w, l)
		return
	}
	bw := min(max(l.Width/4, 12), 30)
	var b bytes.Buffer
	t.print(&b, look{Width: l.Width - bw - 2, Color: l.Color})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	tw := 0
	for _, line := range lines {
		tw = max(tw, visibleWidth(line))
	}
	if bw = min(max(bw, l.Width-tw-2), l.Width-tw-2, 40); bw < 8 {
		io.WriteString(w, b.String())
		return
	}
	share := rep.By[0] != "day"
	vals, _ := usageSeries(rep.Rows)
	head := "TREND"
	if share {
		head = "SHARE"
	}
	lines[0] = padTo(lines[0], tw) + "  " + head
	for i := range rep.Rows {
		lines[i+1] = padTo(lines[i+1], tw) + "  " + paint("36", barCell(vals, i, bw, share), l.Color)
	}
	io.WriteString(w, strings.Join(lines, "\n")+"\n")
}

// optional adds the columns named to those t does without when the
// terminal is too narrow, dropped in that order after the others.
func optional(t *table, names ...string) {
	for _, n := range names {
		if i := slices.Index(t.head, n); i >= 0 && !slices.Contains(t.optional, i) {
			t.optional = append(t.optional, i)
		}
	}
}

// barCell is row i's bar in width columns: scaled to the largest row,
// and for a share followed by its percentage of the whole.
func barCell(vals []float64, i, width int, share bool) string {
	top, sum := 0.0, 0.0
	for _, v := range vals {
		top, sum = max(top, v), sum+v
	}
	if !share || sum <= 0 {
		return hbar(vals[i], top, width)
	}
	pct := fmt.Sprintf("%3.0f%%", vals[i]/sum*100)
	return padTo(hbar(vals[i], top, width-len(pct)-1), width-len(pct)) + pct
}

// usageFootnotes are what printUsage says under its table, folded to the
// width.
func usageFootnotes(w io.Writer, rep usageReport, width int) {
	var notes []string
	if len(rep.UnpricedModels) > 0 {
		notes = append(notes, fmt.Sprintf("no price for %s (built-in prices of %s; add one as [pricing.%q] with input and output, dollars per million tokens)",
			termSafe(strings.Join(rep.UnpricedModels, ", ")), state.BuiltinPricesAsOf, termSafe(rep.UnpricedModels[0])))
	}
	if rep.PricingError != "" {
		notes = append(notes, "prices not read: "+termSafe(rep.PricingError))
	}
	for i, n := range notes {
		if i == 0 {
			fmt.Fprintln(w)
		}
		for _, line := range fold(n, width, 2) {
			fmt.Fprintln(w, line)
		}
	}
}

// usageKey names a row's key: PROVIDER/NAME@FINGERPRINT, or the
// provider's refusals, which no key served.
func usageKey(l usageLine) string {
	if l.Key == "" {
		return l.Provider + " (no key)"
	}
	return l.Provider + "/" + l.Key + "@" + l.Fingerprint
}

// chartHeight is how many lines --chart's columns stand in.
const chartHeight = 10

// printUsageChart draws the period on the whole width: by day, a column
// a day; by anything else, a bar a row. Piped, it is drawn for 80
// columns, without colour.
func printUsageChart(w io.Writer, rep usageReport, l look) {
	width := l.Width
	if width <= 0 {
		width = 80
	}
	vals, dollars := usageSeries(rep.Rows)
	what := "requests"
	if dollars {
		what = "spend"
	}
	if len(rep.Rows) == 0 {
		fmt.Fprintln(w, "no usage recorded")
		return
	}
	if len(rep.By) == 1 && rep.By[0] == "day" {
		columnChart(w, rep, vals, dollars, what, width, l.Color)
	} else {
		barChart(w, rep, vals, dollars, what, width, l.Color)
	}
	usageFootnotes(w, rep, width)
}

// amount is v as the chart's unit says: dollars or a count.
func amount(v float64, isDollars bool) string {
	if isDollars {
		return dollars(v)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// columnChart is a column a day, chartHeight lines high, the largest
// day's amount on the axis, the first and last days under it.
func columnChart(w io.Writer, rep usageReport, vals []float64, isDollars bool, what string, width int, color bool) {
	first, last := rep.Rows[0].Day, rep.Rows[len(rep.Rows)-1].Day
	top := 0.0
	for _, v := range vals {
		top = max(top, v)
	}
	axis := max(len(amount(top, isDollars)), 2)
	cols := buckets(vals, max(width-axis-2, 1))
	if len(cols) < len(vals) { // days share a column: scale to the widest
		top = 0
		for _, v := range cols {
			top = max(top, v)
		}
	}
	fmt.Fprintln(w, fitText(fmt.Sprintf("%s per day, %s to %s (UTC)", what, first, last), width))
	for row := chartHeight - 1; row >= 0; row-- {
		label := ""
		switch row {
		case chartHeight - 1:
			label = amount(top, isDollars)
		case 0:
			label = amount(0, isDollars)
		}
		var b strings.Builder
		for _, v := range cols {
			b.WriteString(columnCell(v, top, row))
		}
		fmt.Fprintf(w, "%*s │%s\n", axis, label, paint("36", strings.TrimRight(b.String(), " "), color))
	}
	dates := first + " to " + last
	if gap := len(cols) - len(first) - len(last); gap > 0 {
		dates = first + strings.Repeat(" ", gap) + last
	}
	fmt.Fprintf(w, "%*s └%s\n%*s  %s\n", axis, "", strings.Repeat("─", len(cols)), axis, "", fitText(dates, width-axis-2))
}

// columnCell is the cell of a column of v (of top) on line row from the
// bottom: full under its height, a partial block at it, empty above.
func columnCell(v, top float64, row int) string {
	if top <= 0 || !(v > 0) {
		return " "
	}
	eighthsHigh := max(int(v/top*chartHeight*8+0.5), 1) - row*8
	switch {
	case eighthsHigh >= 8:
		return "█"
	case eighthsHigh > 0:
		return string(levels[eighthsHigh-1])
	}
	return " "
}

// barChart is a bar a row: its label, its bar scaled to the largest, and
// its amount and share of the whole.
func barChart(w io.Writer, rep usageReport, vals []float64, isDollars bool, what string, width int, color bool) {
	labels := make([]string, len(rep.Rows))
	lw := 0
	for i, l := range rep.Rows {
		labels[i] = strings.Join(usageLabel(l, rep.By), " ")
		lw = max(lw, visibleWidth(labels[i]))
	}
	lw = min(lw, width/3)
	sum, top := 0.0, 0.0
	for _, v := range vals {
		sum, top = sum+v, max(top, v)
	}
	tails := make([]string, len(vals))
	tw := 0
	for i, v := range vals {
		tails[i] = amount(v, isDollars)
		if sum > 0 {
			tails[i] += fmt.Sprintf(" %3.0f%%", v/sum*100)
		}
		tw = max(tw, visibleWidth(tails[i]))
	}
	bw := max(width-lw-2-tw-1, 0)
	fmt.Fprintln(w, fitText(fmt.Sprintf("%s by %s%s", what, strings.Join(rep.By, ","), sinceText(rep.Since)), width))
	for i, v := range vals {
		bar := padTo(paint("36", hbar(v, top, bw), color), bw)
		fmt.Fprintf(w, "%s  %s %*s\n", padTo(fitText(labels[i], lw), lw), bar, tw, tails[i])
	}
}

func sinceText(since string) string {
	if since == "" {
		return ""
	}
	return " since " + since
}
