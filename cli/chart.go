// SPDX-License-Identifier: MIT

package cli

import (
	"math"
	"strings"

	"github.com/mattn/go-runewidth"
)

// The pictures of top and usage: bars, sparklines and charts drawn with
// block characters, measured in terminal columns (go-runewidth), never
// wider than they are given. They are for a terminal only: a pipe or
// --json gets the numbers.

// eighths are the left-aligned partial blocks: 1/8 to 7/8 of a cell.
var eighths = []rune{'▏', '▎', '▍', '▌', '▋', '▊', '▉'}

// levels are the bottom-aligned blocks of a sparkline: 1/8 to 8/8.
var levels = []rune{'▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'}

// hbar is v as a bar of top's share of width cells, to the eighth of a
// cell; at least a sliver when v is above zero. It is never wider than
// width.
func hbar(v, top float64, width int) string {
	if width <= 0 || top <= 0 || !(v > 0) {
		return ""
	}
	n := int(math.Round(min(v/top, 1) * float64(width*8)))
	n = max(n, 1)
	var b strings.Builder
	b.WriteString(strings.Repeat("█", n/8))
	if r := n % 8; r > 0 {
		b.WriteRune(eighths[r-1])
	}
	return b.String()
}

// buckets sums vals into width cells, each a run of consecutive values
// (the last cells may hold one fewer); fewer values than cells leave
// one value a cell.
func buckets(vals []float64, width int) []float64 {
	if width <= 0 {
		return nil
	}
	if len(vals) <= width {
		return vals
	}
	out := make([]float64, width)
	for i, v := range vals {
		out[i*width/len(vals)] += v
	}
	return out
}

// worst is vals in width cells as buckets makes them, each cell the
// largest of its values rather than their sum.
func worst(vals []float64, width int) []float64 {
	if width <= 0 || len(vals) <= width {
		return buckets(vals, width)
	}
	out := make([]float64, width)
	for i, v := range vals {
		c := i * width / len(vals)
		out[c] = max(out[c], v)
	}
	return out
}

// spark is vals as a sparkline of width cells (buckets of them summed),
// scaled to the largest; a cell of nothing is a space, one of anything a
// block of at least one eighth.
func spark(vals []float64, width int) string {
	cells := buckets(vals, width)
	top := 0.0
	for _, v := range cells {
		top = max(top, v)
	}
	var b strings.Builder
	for _, v := range cells {
		if !(v > 0) || top <= 0 {
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(levels[min(int(math.Ceil(v/top*8))-1, 7)])
	}
	return b.String()
}

// visibleWidth is how many columns s takes on a terminal, its colour
// escapes left out.
func visibleWidth(s string) int {
	if !strings.Contains(s, "\x1b[") {
		return runewidth.StringWidth(s)
	}
	return runewidth.StringWidth(stripANSI(s))
}

// stripANSI is s without its colour escapes (CSI sequences).
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// padTo is s with spaces after it to width columns.
func padTo(s string, width int) string {
	if w := visibleWidth(s); w < width {
		return s + strings.Repeat(" ", width-w)
	}
	return s
}

// fitText is s cut to width columns, ending in "…" when cut.
func fitText(s string, width int) string {
	if width <= 0 {
		return ""
	}
	if runewidth.StringWidth(s) <= width {
		return s
	}
	return runewidth.Truncate(s, width, "…")
}

// fold breaks s at spaces into lines of at most width columns (0: one
// line), the lines after the first indented by indent; a word wider than
// a line is cut.
func fold(s string, width, indent int) []string {
	if width <= 0 || visibleWidth(s) <= width {
		return []string{s}
	}
	indent = min(indent, width/2)
	var lines []string
	line, col := "", 0
	for _, word := range strings.Fields(s) {
		ww := visibleWidth(word)
		if col > 0 && col+1+ww > width {
			lines = append(lines, line)
			line, col = strings.Repeat(" ", indent), indent
		}
		if col > indent || (col > 0 && len(lines) == 0) {
			line += " "
			col++
		}
		if col+ww > width {
			word = fitText(stripANSI(word), width-col)
			ww = runewidth.StringWidth(word)
		}
		line += word
		col += ww
	}
	return append(lines, line)
}

// paint wraps s in the colour code (an SGR parameter: "33" yellow) when
// on; plain otherwise.
func paint(code, s string, on bool) string {
	if !on || code == "" || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
