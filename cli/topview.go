// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// topView draws one look at the daemon: a title, a summary line and the
// keys' table, whose rows (the body) scroll.
type topView struct {
	st     *control.Status
	hist   *control.History
	limits map[string]state.Key
	at     time.Time
	width  int
	color  bool
}

// topRow is one key of the table, with its last hour (nil: none).
type topRow struct {
	provider string
	key      control.KeyStatus
	hist     *control.KeyHistory
}

// lines are the view's fixed lines (title, summary, the table's header)
// and its body (a line per provider and key, a strip under a key that
// was set aside in the last hour, then the problems).
func (v topView) lines() (head, body []string) {
	rows := v.rows()
	title := fmt.Sprintf("llmkey top  %s  pid %d  %d in flight", v.at.Format("15:04:05"), v.st.PID, v.st.InFlight)
	if w := visibleWidth(title); w+len("q quits")+2 <= v.width {
		title += strings.Repeat(" ", v.width-w-len("q quits")) + "q quits"
	}
	head = append([]string{title}, v.summary(rows)...)
	table, sparkAt, sparkW := v.table(rows)
	head = append(head, table[0])
	group := ""
	for i, r := range rows {
		if r.provider != group {
			group = r.provider
			body = append(body, paint("1", termSafe(group), v.color))
		}
		body = append(body, table[i+1])
		if strip := v.strip(r, sparkAt, sparkW); strip != "" {
			body = append(body, strip)
		}
	}
	for _, p := range v.st.Problems {
		for _, l := range fold("problem: "+termSafe(p), v.width, 9) {
			body = append(body, paint("31", l, v.color))
		}
	}
	return head, body
}

// rows are the keys, by provider, those set aside before the ready ones
// (each in keyfile order), with their last hour.
func (v topView) rows() []topRow {
	hist := map[string]*control.KeyHistory{}
	if v.hist != nil {
		for name, ph := range v.hist.Providers {
			for i := range ph.Keys {
				hist[name+"/"+ph.Keys[i].Name] = &ph.Keys[i]
			}
		}
	}
	var rows []topRow
	for _, n := range slices.Sorted(maps.Keys(v.st.Providers)) {
		keys := slices.Clone(v.st.Providers[n].Keys)
		slices.SortStableFunc(keys, func(a, b control.KeyStatus) int {
			return boolRank(a.State == "ready") - boolRank(b.State == "ready")
		})
		for _, k := range keys {
			rows = append(rows, topRow{provider: n, key: k, hist: hist[n+"/"+k.Name]})
		}
	}
	return rows
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// summary counts the keys by state, the requests refused in the last 5
// minutes and today's spend; a narrow terminal leaves out the states no
// key is in, then folds it.
func (v topView) summary(rows []topRow) []string {
	line := v.summaryOf(rows, false)
	if visibleWidth(line) > v.width { // the count of keys is their sum
		line = strings.SplitN(line, "  ", 2)[1]
	}
	if visibleWidth(line) > v.width {
		line = v.summaryOf(rows, true)
	}
	return packParts(strings.Split(line, "  "), v.width)
}

// packParts puts parts on lines of at most width columns, two spaces
// apart; a part wider than a line is cut.
func packParts(parts []string, width int) []string {
	var lines []string
	line := ""
	for _, p := range parts {
		switch {
		case line == "":
			line = p
		case visibleWidth(line)+2+visibleWidth(p) <= width:
			line += "  " + p
		default:
			lines = append(lines, line)
			line = p
		}
		if visibleWidth(line) > width {
			line = fitText(stripANSI(line), width)
		}
	}
	return append(lines, line)
}

func (v topView) summaryOf(rows []topRow, brief bool) string {
	count := map[string]int{}
	spent, priced := 0.0, true
	for _, r := range rows {
		count[r.key.State]++
		spent += r.key.CostTodayUSD
		priced = priced && r.key.UnpricedModel == ""
	}
	parts := []string{fmt.Sprintf("%d keys", len(rows))}
	for _, s := range []string{"ready", "cooling", "parked", "limited", "disabled", "unavailable"} {
		always := !brief && (s == "ready" || s == "cooling" || s == "parked" || s == "limited")
		if count[s] > 0 || always {
			parts = append(parts, paint(stateColor(s), fmt.Sprintf("%s %d", s, count[s]), v.color && count[s] > 0))
		}
	}
	if refused, ok := v.refused(5); ok {
		parts = append(parts, paint(map[bool]string{true: "31"}[refused > 0], fmt.Sprintf("refused %d in 5m", refused), v.color))
	}
	today := "today " + dollars(spent)
	if !priced {
		today += "+" // some answers had no price
	}
	return strings.Join(append(parts, today), "  ")
}

// refused sums the requests refused in the last n minutes, and whether
// the daemon keeps that history.
func (v topView) refused(n int) (int, bool) {
	if v.hist == nil {
		return 0, false
	}
	sum := 0
	for _, ph := range v.hist.Providers {
		sum += tail(ph.Refused, n)
		for _, k := range ph.Keys {
			sum += tail(k.Refused, n)
		}
	}
	return sum, true
}

func tail(xs []int, n int) int {
	sum := 0
	for _, x := range xs[max(len(xs)-n, 0):] {
		sum += x
	}
	return sum
}

// sparkWidth is how many cells the last hour gets at width at least: a
// fifth of what the title leaves, 10 to 60 (more when the table is
// narrower); none on a terminal too narrow.
func sparkWidth(width int) int {
	if width < 50 {
		return 0
	}
	return min(max((width-20)/5, 10), 60)
}

// table is the keys' table, its header first, fitted to the width with
// the last hour drawn at its right, the column where that begins and its
// width (-1 and 0: none).
func (v topView) table(rows []topRow) ([]string, int, int) {
	sw := sparkWidth(v.width)
	width := v.width
	if sw > 0 {
		width -= sw + 2
	}
	// The latest failure is cut before it goes; where even that does not
	// fit, it goes last.
	lines, tw := v.printTable(rows, width, false)
	if tw > width {
		lines, tw = v.printTable(rows, width, true)
	}
	if sw == 0 {
		return lines, -1, 0
	}
	sw = min(max(sw, v.width-tw-2), 60) // what the table left
	lines[0] = padTo(lines[0], tw) + "  " + fitText("LAST HOUR", sw)
	for i, r := range rows {
		lines[i+1] = padTo(lines[i+1], tw) + "  " + paint("36", hourSpark(r.hist, sw), v.color)
	}
	return lines, tw + 2, sw
}

// printTable is the keys' table fitted to width, and how wide it came
// out; a narrow terminal does without TOKENS, REQS, FLIGHT, TPM and LEFT,
// in that order, then LAST when dropLast.
func (v topView) printTable(rows []topRow, width int, dropLast bool) ([]string, int) {
	t := &table{
		head:     []string{"NAME", "STATE", "WAIT", "FLIGHT", "RPM", "TPM", "REQS", "TOKENS", "SPENT", "LEFT", "LAST"},
		right:    map[int]bool{2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true},
		optional: []int{7, 6, 3, 5, 9},
		shrink:   map[int]bool{0: true, 10: true},
		color: func(_, col int, cell string) string {
			if col == 1 {
				return stateColor(cell)
			}
			return ""
		},
	}
	if dropLast {
		t.optional = append(t.optional, 10)
	}
	for _, r := range rows {
		k, lim := r.key, v.limits[r.provider+"/"+r.key.Name]
		last := "-"
		if f := k.Failures; len(f) > 0 {
			// Cut first, so that a long reason does not cost the columns.
			l := f[len(f)-1]
			last = fitText(ago(v.at.Sub(l.At))+" "+termSafe(l.Reason), 28)
		}
		t.add(termSafe(k.Name), k.State, wait(k.CooldownSeconds), strconv.Itoa(k.InFlight),
			ofLimit(k.RequestsMinute, lim.RPM), ofLimit(k.TokensMinute, lim.TPM),
			compact(k.RequestsToday), compact(k.TokensToday), spentCell(k), leftCell(k), last)
	}
	var b bytes.Buffer
	t.print(&b, look{Width: width, Color: v.color})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	tw := 0
	for _, l := range lines {
		tw = max(tw, visibleWidth(l))
	}
	return lines, tw
}

// hourSpark is a key's requests of the last hour in width cells.
func hourSpark(h *control.KeyHistory, width int) string {
	if h == nil {
		return ""
	}
	vals := make([]float64, len(h.Requests))
	for i, n := range h.Requests {
		vals[i] = float64(n)
	}
	return strings.TrimRight(spark(vals, width), " ")
}

// strip is the line under a key's row that marks, under its last hour,
// the minutes it was cooling (c) or parked (p); "" when it was neither.
func (v topView) strip(r topRow, at, width int) string {
	if at < 0 || r.hist == nil || strings.Trim(r.hist.Aside, ".") == "" {
		return ""
	}
	cells := worst(asideMarks(r.hist.Aside), width)
	var b strings.Builder
	for _, c := range cells {
		switch {
		case c >= 2:
			b.WriteString(paint("31", "p", v.color))
		case c >= 1:
			b.WriteString(paint("33", "c", v.color))
		default:
			b.WriteByte(' ')
		}
	}
	label := fitText("  set aside", at)
	return padTo(paint("2", label, v.color), at) + strings.TrimRight(b.String(), " ")
}

// asideMarks are a key's minutes as numbers: 2 parked, 1 cooling, 0
// neither.
func asideMarks(aside string) []float64 {
	out := make([]float64, len(aside))
	for i, c := range aside {
		switch c {
		case 'p', 'b':
			out[i] = 2
		case 'c':
			out[i] = 1
		}
	}
	return out
}

// spentCell is what a key spent today: "$0.12", over its daily budget
// when it has one ("$4.10/5"), "+" when an answer had no price.
func spentCell(k control.KeyStatus) string {
	s := dollars(k.CostTodayUSD)
	if k.BudgetUSDDay > 0 {
		s += "/" + strings.TrimPrefix(dollars(k.BudgetUSDDay), "$")
	}
	if k.UnpricedModel != "" {
		s += "+"
	}
	return s
}

// leftCell is the share of its rate limits a key's provider said is
// left: "42%", or "-".
func leftCell(k control.KeyStatus) string {
	if k.QuotaLeft == nil {
		return "-"
	}
	return strconv.Itoa(int(*k.QuotaLeft*100+0.5)) + "%"
}

// dollars is an amount in few characters: $0, $0.0023, $0.12, $12.30,
// $1234.
func dollars(d float64) string {
	switch {
	case d == 0:
		return "$0"
	case d < 0.0001:
		return "<$0.0001"
	case d < 0.01:
		return "$" + strings.TrimRight(strconv.FormatFloat(d, 'f', 4, 64), "0")
	case d < 100:
		return "$" + strconv.FormatFloat(d, 'f', 2, 64)
	}
	return "$" + strconv.FormatFloat(d, 'f', 0, 64)
}
