// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"
)

func sampleTable() *table {
	t := &table{
		head:     []string{"NAME", "STATE", "N", "LIMITS", "REASON"},
		right:    map[int]bool{2: true},
		shrink:   map[int]bool{0: true, 4: true},
		optional: []int{3},
		color: func(_, col int, cell string) string {
			if col == 1 {
				return stateColor(cell)
			}
			return ""
		},
	}
	t.add("personal-free-tier-key", "cooling", "12", "rpm=500,tpm=200000", strings.Repeat("rate limited ", 5))
	t.add("b", "ready", "3", "", "")
	return t
}

func TestTableFitsTheWidthAndCutsTheWidestFirst(t *testing.T) {
	for _, width := range []int{40, 60, 80} {
		var b bytes.Buffer
		sampleTable().print(&b, look{Width: width})
		for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if n := utf8.RuneCountInString(l); n > width {
				t.Errorf("width %d: line of %d: %q", width, n, l)
			}
		}
		if strings.Contains(b.String(), "LIMITS") {
			t.Errorf("width %d: LIMITS kept though the table does not fit:\n%s", width, b.String())
		}
		if !strings.Contains(b.String(), "…") {
			t.Errorf("width %d: nothing cut:\n%s", width, b.String())
		}
	}
	// Whole when there is room, or no width (piped, --wide): no cut, and
	// an empty cell is "-" so that every row has its columns.
	var b bytes.Buffer
	sampleTable().print(&b, look{})
	want := "NAME                    STATE     N  LIMITS              REASON\n" +
		"personal-free-tier-key  cooling  12  rpm=500,tpm=200000  " + strings.Repeat("rate limited ", 5) + "\n" +
		"b                       ready     3  -                   -\n"
	if b.String() != want {
		t.Errorf("whole table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTableColoursStatesOnlyWhenAsked(t *testing.T) {
	var plain, colored bytes.Buffer
	sampleTable().print(&plain, look{Width: 80})
	sampleTable().print(&colored, look{Width: 80, Color: true})
	if strings.Contains(plain.String(), "\x1b") {
		t.Errorf("colour without Color: %q", plain.String())
	}
	if !strings.Contains(colored.String(), "\x1b[33mcooling\x1b[0m") || !strings.Contains(colored.String(), "\x1b[32mready\x1b[0m") {
		t.Errorf("states not coloured: %q", colored.String())
	}
	// Colour does not move the columns.
	strip := strings.NewReplacer("\x1b[33m", "", "\x1b[32m", "", "\x1b[0m", "")
	if strip.Replace(colored.String()) != plain.String() {
		t.Errorf("colour moved the columns:\n%s\n%s", colored.String(), plain.String())
	}
}

func TestCutKeepsWideRunesWhole(t *testing.T) {
	if got := cut("模型模型模型", 5); got != "模型…" || cellWidth(got) > 5 {
		t.Errorf("cut: %q (%d columns)", got, cellWidth(got))
	}
	if got := cut("short", 8); got != "short" {
		t.Errorf("cut: %q", got)
	}
}

func TestWrapIndents(t *testing.T) {
	got := wrap("to do: one two three four five six", 17, 7)
	if got != "to do: one two\n       three four\n       five six\n" {
		t.Errorf("wrap: %q", got)
	}
}

func TestTopCompactNumbers(t *testing.T) {
	for n, want := range map[int]string{950: "950", 9999: "9999", 12345: "12.3k", 200000: "200k", 4500000: "4.5M"} {
		if got := compact(n); got != want {
			t.Errorf("compact(%d) = %q, want %q", n, got, want)
		}
	}
	if ofLimit(12, 60) != "12/60" || ofLimit(12, 0) != "12" {
		t.Errorf("ofLimit: %q %q", ofLimit(12, 60), ofLimit(12, 0))
	}
}

// A cell's width is what go-runewidth says a terminal draws, by grapheme
// cluster: emoji two columns, with their modifiers, ZWJ sequences and
// variation selectors inside the one cluster; flags (a pair of regional
// indicators) one, as go-runewidth counts them; CJK and fullwidth forms
// two; a combining mark nothing; ambiguous runes (…) one, whatever the
// locale.
func TestCellWidthIsGoRunewidths(t *testing.T) {
	narrow := &runewidth.Condition{EastAsianWidth: false, StrictEmojiNeutral: true}
	for _, tc := range []struct {
		what, s string
		want    int
	}{
		{"ascii", "openai/work", 11},
		{"CJK", "模型", 4},
		{"hangul", "한국어", 6},
		{"fullwidth", "ｆｕｌｌ", 8},
		{"a combining mark", "e\u0301cole", 5},
		{"two combining marks", "x\u0308\u0323", 1},
		{"an emoji", "👍", 2},
		{"an emoji presentation in the BMP", "⌚✅", 4},
		{"a skin tone", "👍🏽", 2},
		{"a ZWJ family", "👨\u200d👩\u200d👧", 2},
		{"a ZWJ flag", "🏳\ufe0f\u200d🌈", 1},
		{"a flag", "🇯🇵", 1},
		{"a keycap", "1\ufe0f\u20e3", 1},
		{"a zero width space", "a\u200bb", 2},
		{"ambiguous", "…±", 2},
		{"the replacement character", "\ufffd", 1},
	} {
		if got, lib := cellWidth(tc.s), narrow.StringWidth(tc.s); got != tc.want || got != lib {
			t.Errorf("%s %q: %d columns, want %d (go-runewidth: %d)", tc.what, tc.s, got, tc.want, lib)
		}
	}
}

// cut keeps a cluster whole (an emoji sequence, a letter and its mark)
// and ends in "…" within the width.
func TestCutKeepsClustersWhole(t *testing.T) {
	family := "👨\u200d👩\u200d👧"
	for _, tc := range []struct {
		s     string
		width int
		want  string
	}{
		{family + family + family, 5, family + family + "…"},
		{"e\u0301e\u0301e\u0301e\u0301", 3, "e\u0301e\u0301…"},
		{"👍🏽👍🏽👍🏽", 4, "👍🏽…"},
		{"模型模型", 8, "模型模型"},
	} {
		got := cut(tc.s, tc.width)
		if got != tc.want || cellWidth(got) > tc.width {
			t.Errorf("cut(%q, %d) = %q (%d columns), want %q", tc.s, tc.width, got, cellWidth(got), tc.want)
		}
	}
}

// Rows whose cells hold emoji, CJK and combining marks are padded so that
// every column starts (left-aligned) or ends (right-aligned) at the same
// screen column in each line, whole or cut to fit: measured as
// go-runewidth says a terminal draws them.
func TestTableAlignsWideAndCombiningCells(t *testing.T) {
	screen := (&runewidth.Condition{EastAsianWidth: false, StrictEmojiNeutral: true}).StringWidth
	sample := func() *table {
		tb := &table{head: []string{"NAME", "N", "NOTE"}, right: map[int]bool{1: true}, shrink: map[int]bool{0: true, 2: true}}
		tb.add("👨\u200d👩\u200d👧-family", "1", "ZWJ")
		tb.add("模型-key", "22", "CJK 模型")
		tb.add("e\u0301cole\u0301", "333", "combining")
		tb.add("🇯🇵-flag-👍🏽", "4", "flag and tone")
		tb.add("plain-ascii-name-that-is-long", "5", "ascii")
		return tb
	}
	for _, width := range []int{0, 30} {
		var b bytes.Buffer
		tb := sample()
		if err := tb.print(&b, look{Width: width}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		rows := append([][]string{tb.head}, tb.rows...)
		w := tb.widths(width)
		for i, l := range lines {
			// The NAME column, cut or padded, then two spaces: N ends
			// and NOTE starts at the same screen column in every line.
			name := cut(rows[i][0], w[0])
			nEnd := strings.Index(l, rows[i][1]+"  "+cut(rows[i][2], w[2]))
			if nEnd < 0 || !strings.HasPrefix(l, name) {
				t.Fatalf("width %d: line %q lacks its cells", width, l)
			}
			if got, want := screen(l[:nEnd+len(rows[i][1])]), w[0]+2+w[1]; got != want {
				t.Errorf("width %d: N ends at column %d, want %d:\n%s", width, got, want, b.String())
			}
			if width > 0 && screen(l) > width {
				t.Errorf("width %d: a line of %d columns: %q", width, screen(l), l)
			}
		}
	}
}
