// SPDX-License-Identifier: MIT

package cli

import (
	"io"
	"os"
	"strings"

	"github.com/mattn/go-runewidth"
	"golang.org/x/term"
)

// A table is what list, status and usage print: one-word headers over
// columns two spaces apart. On a terminal it fits the width (long cells
// are cut with "…", the widest first, never below a few characters) and
// states are coloured; piped, every cell is whole and uncoloured, so that
// awk and cut see the same columns at any width.
type table struct {
	head []string
	rows [][]string
	// right aligns a column to the right (numbers).
	right map[int]bool
	// shrink names the columns that may be cut to fit, in no order: the
	// widest goes first.
	shrink map[int]bool
	// optional names the columns that a terminal too narrow for the
	// whole table does without (--wide shows them), the first dropped
	// first.
	optional []int
	// color returns the ANSI colour of a cell, "" for none.
	color func(row, col int, cell string) string
}

// minCut is how narrow a cut column may go.
const minCut = 8

// look is how output is shown: the terminal's width (0 when not a
// terminal or --wide: nothing is cut) and whether to colour.
type look struct {
	Width int
	Color bool
}

// lookOf is how output to w looks: sized and coloured on a terminal
// only; NO_COLOR (any value), --no-color and TERM=dumb turn colour off.
func lookOf(w io.Writer, wide, noColor bool) look {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return look{}
	}
	var l look
	if !wide {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			l.Width = width
		} else {
			l.Width = 80
		}
	}
	l.Color = !noColor && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return l
}

func (t *table) add(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-" // an empty cell would shift the columns for awk
		}
	}
	t.rows = append(t.rows, cells)
}

// widths are the columns' widths, cut to fit width when it is not 0.
func (t *table) widths(width int) []int {
	w := make([]int, len(t.head))
	for i, h := range t.head {
		w[i] = cellWidth(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			w[i] = max(w[i], cellWidth(c))
		}
	}
	if width <= 0 {
		return w
	}
	total := func() int {
		n := -2
		for _, x := range w {
			if x >= 0 {
				n += x + 2
			}
		}
		return n
	}
	for _, i := range t.optional {
		if total() <= width {
			break
		}
		w[i] = -1 // left out
	}
	// Cut the widest shrinkable column by one until the table fits (the
	// last column's trailing spaces are not printed, so they do not
	// count) or nothing can be cut any more.
	for total() > width {
		widest := -1
		for i := range w {
			if t.shrink[i] && w[i] > max(minCut, cellWidth(t.head[i])) && (widest < 0 || w[i] > w[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		w[widest]--
	}
	return w
}

func (t *table) print(out io.Writer, l look) error {
	w := t.widths(l.Width)
	var b strings.Builder
	last := len(w) - 1
	for last > 0 && w[last] < 0 {
		last--
	}
	line := func(row int, cells []string) {
		first := true
		for i, c := range cells {
			if w[i] < 0 {
				continue
			}
			c = cut(c, w[i])
			pad := strings.Repeat(" ", w[i]-cellWidth(c))
			if !first {
				b.WriteString("  ")
			}
			first = false
			colored := c
			if l.Color && row >= 0 && t.color != nil {
				if code := t.color(row, i, cells[i]); code != "" {
					colored = "\x1b[" + code + "m" + c + "\x1b[0m"
				}
			}
			switch {
			case t.right[i]:
				b.WriteString(pad + colored)
			case i == last:
				b.WriteString(colored)
			default:
				b.WriteString(colored + pad)
			}
		}
		b.WriteString("\n")
	}
	line(-1, t.head)
	for i, r := range t.rows {
		line(i, r)
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// cells measures text as a terminal draws it: by grapheme cluster (an
// emoji sequence joined by ZWJ, a flag, a letter and its combining marks
// are one), East Asian wide and fullwidth forms two columns. Runes of
// ambiguous width count one whatever the locale, as they did before, so
// that the columns do not move with LANG.
var cells = &runewidth.Condition{EastAsianWidth: false, StrictEmojiNeutral: true}

// cellWidth is how many columns s takes; the cells are termSafe, so none
// holds a control character.
func cellWidth(s string) int { return cells.StringWidth(s) }

// cut shortens s to width columns, ending in "…" when it cut; it never
// cuts a grapheme cluster in two.
func cut(s string, width int) string { return cells.Truncate(s, width, "…") }

// Colours of key states: ready green, cooling and limited yellow, parked
// and unavailable red, disabled dim.
func stateColor(state string) string {
	switch state {
	case "ready":
		return "32"
	case "cooling", "limited":
		return "33"
	case "parked", "unavailable", "invalid":
		return "31"
	case "disabled":
		return "2"
	}
	return ""
}
