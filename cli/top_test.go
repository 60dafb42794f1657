// SPDX-License-Identifier: MIT

package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/llmkey/llmkey/daemon/control"
)

// manyKeys is a status of n openai keys, the one named cool cooling, and
// their history: key k0 sent a burst two minutes ago, cool was cooling
// for the last three minutes.
func manyKeys(n int, cool string) (*control.Status, *control.History) {
	st := &control.Status{Running: true, PID: 42, Providers: map[string]control.ProviderStatus{}}
	ph := control.ProviderHistory{Refused: make([]int, 60)}
	ps := control.ProviderStatus{}
	for i := range n {
		name := fmt.Sprintf("k%d", i)
		ks := control.KeyStatus{Provider: "openai", Name: name, State: "ready", CostTodayUSD: 0.01}
		kh := control.KeyHistory{Name: name, Requests: make([]int, 60), Refused: make([]int, 60), Aside: strings.Repeat(".", 60)}
		if name == cool {
			ks.State, ks.CooldownSeconds, ks.Reason = "cooling", 42, "rate limited"
			kh.Aside = strings.Repeat(".", 57) + "ccc"
		}
		if i == 0 {
			kh.Requests[57] = 30
			kh.Requests[10] = 2
		}
		ps.Keys = append(ps.Keys, ks)
		ph.Keys = append(ph.Keys, kh)
	}
	ph.Refused[58] = 7
	st.Providers["openai"] = ps
	return st, &control.History{Minutes: 60, Providers: map[string]control.ProviderHistory{"openai": ph}}
}

func topScreen(t *testing.T, m *topModel) []string {
	t.Helper()
	lines := strings.Split(m.View(), "\n")
	if len(lines) > m.height {
		t.Errorf("%d lines on a terminal of %d", len(lines), m.height)
	}
	for _, l := range lines {
		if w := visibleWidth(l); w > m.width {
			t.Errorf("a line of %d columns on a terminal of %d: %q", w, m.width, l)
		}
	}
	return lines
}

// In 80x24 with 31 keys: the summary counts them, the cooling key is
// on the first screen with the minutes it cooled marked, the burst shows
// in its key's last hour, and every key can be scrolled to.
func TestTopFitsAndScrolls(t *testing.T) {
	st, hist := manyKeys(31, "k17")
	m := &topModel{width: 80, height: 24, color: true, topStatus: topStatus{st: st, hist: hist, at: time.Now()}}
	screen := topScreen(t, m)
	text := stripANSI(strings.Join(screen, "\n"))
	for _, want := range []string{"31 keys", "ready 30", "cooling 1", "parked 0", "limited 0", "refused 7 in 5m", "today $0.31", "+", "more ↓"} {
		if !strings.Contains(text, want) {
			t.Errorf("the first screen lacks %q:\n%s", want, text)
		}
	}
	row := func(lines []string, name string) (string, int) {
		for i, l := range lines {
			if f := strings.Fields(stripANSI(l)); len(f) > 1 && f[0] == name {
				return stripANSI(l), i
			}
		}
		return "", -1
	}
	cool, at := row(screen, "k17")
	if !strings.Contains(cool, "cooling") || at < 0 || !strings.HasSuffix(strings.TrimRight(stripANSI(screen[at+1]), " "), "c") {
		t.Errorf("the cooling key, or its strip:\n%s", text)
	}
	burst, _ := row(screen, "k0")
	if !strings.HasSuffix(burst, "█") {
		t.Errorf("k0's last hour does not end in its burst of two minutes ago: %q", burst)
	}
	seen := map[string]bool{}
	for range 10 {
		for _, l := range topScreen(t, m) {
			if f := strings.Fields(stripANSI(l)); len(f) > 0 {
				seen[f[0]] = true
			}
		}
		m.Update(tea.KeyMsg{Type: tea.KeyPgDown})
	}
	for i := range 31 {
		if !seen[fmt.Sprintf("k%d", i)] {
			t.Errorf("k%d never shown while paging down", i)
		}
	}
	m.Update(tea.KeyMsg{Type: tea.KeyHome})
	if _, at := row(topScreen(t, m), "k17"); at < 0 {
		t.Error("Home does not come back to the top")
	}
}

// A smaller terminal shows less, never wider or taller than it is: the
// summary and the line that says what is hidden stay.
func TestTopDegradesInASmallTerminal(t *testing.T) {
	st, hist := manyKeys(31, "k3")
	for _, size := range [][2]int{{60, 12}, {40, 8}, {30, 3}, {20, 2}} {
		m := &topModel{width: size[0], height: size[1], topStatus: topStatus{st: st, hist: hist, at: time.Now()}}
		text := strings.Join(topScreen(t, m), "\n")
		if !strings.Contains(text, "31 keys") || (size[1] > 2 && !strings.Contains(text, "more")) {
			t.Errorf("%dx%d:\n%s", size[0], size[1], text)
		}
	}
}

// A wide terminal shows every column: what a key's provider said is
// left of its limits, and a key's spend over its daily budget.
func TestTopShowsWhatIsLeftAndSpent(t *testing.T) {
	st, hist := manyKeys(3, "")
	left := 0.42
	k := &st.Providers["openai"].Keys[1]
	k.QuotaLeft, k.CostTodayUSD, k.BudgetUSDDay = &left, 4.1, 5
	m := &topModel{width: 160, height: 24, topStatus: topStatus{st: st, hist: hist, at: time.Now()}}
	text := strings.Join(topScreen(t, m), "\n")
	for _, want := range []string{"LEFT", "SPENT", "TOKENS", "FLIGHT", "42%", "$4.10/5.00"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q at 160 columns:\n%s", want, text)
		}
	}
}
