// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// thirtyDays is a month of usage on two keys, a key and a model with
// long names, a model without a price, and refusals with no key.
func thirtyDays() []state.UsageRow {
	var rows []state.UsageRow
	for d := 1; d <= 30; d++ {
		day := fmt.Sprintf("2026-11-%02d", d)
		rows = append(rows,
			state.UsageRow{UsageKey: state.UsageKey{Day: day, Provider: "openai", Key: "work", Fingerprint: "0a1b2c3d", Model: "gpt-4o"},
				Counts: state.Counts{Requests: int64(d), Successes: int64(d), Input: int64(d) * 1000, Output: 100}},
			state.UsageRow{UsageKey: state.UsageKey{Day: day, Provider: "anthropic", Key: "personal-free-tier-of-a-long-name", Fingerprint: "9f8e7d6c", Model: "claude-sonnet-4-5-20250929-with-a-much-longer-name"},
				Counts: state.Counts{Requests: 3, Successes: 3, Input: 20000, Output: 2000, CacheRead: 500}})
	}
	rows = append(rows,
		state.UsageRow{UsageKey: state.UsageKey{Day: "2026-11-30", Provider: "openai", Key: "work", Fingerprint: "0a1b2c3d", Model: "an-unpriced-model-with-a-name-of-forty-chars"},
			Counts: state.Counts{Requests: 1, Successes: 1, Input: 5}},
		state.UsageRow{UsageKey: state.UsageKey{Day: "2026-11-30", Provider: "openai", Model: "gpt-4o"},
			Counts: state.Counts{Refused: map[string]int64{"all-keys-cooling": 12}}})
	return rows
}

func usageText(t *testing.T, by []string, l look, chart bool) string {
	t.Helper()
	rep := usageReport{By: by}
	rep.Rows, rep.Total = aggregate(thirtyDays(), "", by, nil)
	rep.UnpricedModels = rep.Total.UnpricedModels
	var out bytes.Buffer
	s := Streams{Out: &out, Err: &out, Look: l}
	if chart {
		printUsageChart(&out, rep, l)
	} else {
		printUsage(s, rep)
	}
	return out.String()
}

// On a terminal, usage by day draws its trend and by key each key's
// share, in a bar column; piped, neither; no line is wider than the
// terminal, its footnote included; refusals are a column, with the
// provider's own row by key.
func TestUsageBarsOnATerminalOnly(t *testing.T) {
	for _, width := range []int{80, 60, 132} {
		for _, by := range [][]string{{"day"}, {"key"}, {"label"}, {"model"}} {
			text := usageText(t, by, look{Width: width}, false)
			lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
			head := map[bool]string{true: "TREND", false: "SHARE"}[by[0] == "day"]
			if !strings.HasSuffix(strings.TrimSpace(lines[0]), head) || !strings.Contains(text, "█") {
				t.Errorf("--by %s at %d columns: no %s bars:\n%s", by[0], width, head, text)
			}
			for _, l := range lines {
				if w := visibleWidth(l); w > width {
					t.Errorf("--by %s: a line of %d columns at %d: %q", by[0], w, width, l)
				}
			}
			if by[0] == "key" && !strings.Contains(text, "openai (no key)") {
				t.Errorf("--by key: no row for the provider's refusals:\n%s", text)
			}
		}
	}
	piped := usageText(t, []string{"key"}, look{}, false)
	if strings.ContainsAny(piped, "█▏▎▍▌▋▊▉") || strings.Contains(piped, "SHARE") || !strings.Contains(piped, "REFUSED") {
		t.Errorf("piped:\n%s", piped)
	}
	for _, l := range strings.Split(piped, "\n") {
		if strings.HasPrefix(l, "openai (no key)") && !strings.HasSuffix(l, " 12") {
			t.Errorf("the refusals' row: %q", l)
		}
	}
}

// The trend grows with the days: the last day's bar is the longest.
func TestUsageTrendFollowsTheDays(t *testing.T) {
	lines := strings.Split(usageText(t, []string{"day"}, look{Width: 100}, false), "\n")
	first, last := lines[1], lines[30]
	if !strings.HasPrefix(first, "2026-11-01") || !strings.HasPrefix(last, "2026-11-30") ||
		strings.Count(last, "█") <= strings.Count(first, "█") {
		t.Errorf("first and last days:\n%s\n%s", first, last)
	}
}

// --chart draws a column a day, or a bar a row, on the whole width and
// never past it (80 columns when piped).
func TestUsageChart(t *testing.T) {
	for _, l := range []look{{Width: 80}, {Width: 45}, {}} {
		for _, by := range [][]string{{"day"}, {"key"}, {"day", "key"}} {
			text := usageText(t, by, l, true)
			width := l.Width
			if width == 0 {
				width = 80
			}
			for _, line := range strings.Split(text, "\n") {
				if w := visibleWidth(line); w > width {
					t.Errorf("--chart --by %v at %d: a line of %d: %q", by, width, w, line)
				}
			}
			if !strings.Contains(text, "█") || !strings.Contains(text, "spend") {
				t.Errorf("--chart --by %v at %d:\n%s", by, width, text)
			}
			if by[0] == "day" && len(by) == 1 && (!strings.Contains(text, "2026-11-01") || !strings.Contains(text, "2026-11-30") || !strings.Contains(text, "└")) {
				t.Errorf("--chart --by day:\n%s", text)
			}
		}
	}
}

// Bars and columns are measured to the eighth of a cell, never wider
// than asked.
func TestBarsAndSparks(t *testing.T) {
	for _, c := range []struct {
		v, top float64
		width  int
		want   string
	}{{1, 1, 4, "████"}, {0.5, 1, 4, "██"}, {1, 8, 1, "▏"}, {0.01, 1, 4, "▏"}, {0, 1, 4, ""}, {2, 1, 3, "███"}} {
		if got := hbar(c.v, c.top, c.width); got != c.want {
			t.Errorf("hbar(%v, %v, %d) = %q, want %q", c.v, c.top, c.width, got, c.want)
		}
	}
	if got := spark([]float64{0, 1, 8, 4}, 4); got != " ▁█▄" {
		t.Errorf("spark: %q", got)
	}
	if got := spark([]float64{1, 1, 0, 0, 0, 8}, 3); got != "▂ █" {
		t.Errorf("spark of 6 in 3: %q", got)
	}
	for _, l := range fold("no price for a-model-whose-name-is-longer-than-the-whole-line, b (add one)", 20, 2) {
		if visibleWidth(l) > 20 {
			t.Errorf("fold: %q", l)
		}
	}
}
