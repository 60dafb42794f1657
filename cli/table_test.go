// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
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
