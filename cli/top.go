// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// The live view is Bubble Tea's: it owns the terminal (the alternate
// screen, raw keys, resizes) and gives us a model to update and draw,
// which is all llmkey needs; the drawing is the tables' own code.

func ConfigureTopCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "top",
		Usage: "watch the keys live: state, cooldown, this minute against the limits, in flight, failures",
		Description: "Refreshes every second from the running daemon (never starts one: it waits for it). The keys are grouped " +
			"by provider. RPM and TPM are the last minute's requests and tokens, over the key's limit when it has one; " +
			"REQS and TOKENS are today's; LAST is the latest failure. q, Esc or Ctrl-C quits. Needs a terminal: " +
			"scripts read 'llmkey status --json'.",
		Flags: []ucli.Flag{noColorFlag()},
		Action: withPaths(func(c *ucli.Context, p state.Paths) error {
			return TopCommand(c.Context, p, streams(c), c.Bool("no-color"))
		}),
	})
}

// TopCommand runs the live view until q.
func TopCommand(ctx context.Context, p state.Paths, s Streams, noColor bool) error {
	out, ok := s.Out.(*os.File)
	if !ok || !isTerminal(out) || !isTerminal(s.In) {
		return usageError("scripts read llmkey status --json; llmkey status prints it once", "top needs a terminal")
	}
	m := &topModel{ctx: ctx, paths: p, client: control.NewClient(p), color: lookOf(out, true, noColor).Color, width: 80, height: 24}
	_, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx), tea.WithInput(s.In), tea.WithOutput(out)).Run()
	if errors.Is(err, tea.ErrProgramKilled) {
		return nil
	}
	return err
}

type topModel struct {
	ctx           context.Context
	paths         state.Paths
	client        *control.Client
	color         bool
	width, height int

	topStatus // the last answer
}

// topStatus is one look at the daemon.
type topStatus struct {
	st     *control.Status
	err    error
	limits map[string]state.Key // PROVIDER/NAME: the keyfile's limits
	at     time.Time
}

type topTick struct{}

// topEvery is how often the view asks the daemon.
const topEvery = time.Second

func (m *topModel) fetch() tea.Msg {
	ctx, cancel := context.WithTimeout(m.ctx, 2*time.Second)
	defer cancel()
	st, err := m.client.Status(ctx)
	limits := map[string]state.Key{}
	if cfg, _ := state.LoadAsWritten(m.paths.Keyfile); cfg != nil {
		for _, k := range cfg.Keys {
			limits[k.Ref()] = k
		}
	}
	return topStatus{st: st, err: err, limits: limits, at: time.Now()}
}

func (m *topModel) Init() tea.Cmd { return m.fetch }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "esc", "ctrl+c", "ctrl+d":
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case topStatus:
		m.topStatus = msg
		return m, tea.Tick(topEvery, func(time.Time) tea.Msg { return topTick{} })
	case topTick:
		return m, m.fetch
	}
	return m, nil
}

func (m *topModel) View() string {
	var lines []string
	title := "llmkey top   q quits"
	switch {
	case m.st == nil && m.err == nil:
		lines = append(lines, title, "", "asking the daemon...")
	case errors.Is(m.err, control.ErrNotRunning):
		lines = append(lines, title, "", "the daemon is not running: llmkey start (this view waits for it)")
	case m.err != nil:
		lines = append(lines, title, "", termSafe(m.err.Error()))
	default:
		lines = append(lines, fmt.Sprintf("llmkey top  %s  pid %d  %s  %d in flight  q quits",
			m.at.Format("15:04:05"), m.st.PID, m.st.ProxyURL, m.st.InFlight), "")
		lines = append(lines, m.keyLines()...)
		for _, p := range m.st.Problems {
			lines = append(lines, "problem: "+termSafe(p))
		}
	}
	for i, l := range lines {
		if !strings.Contains(l, "\x1b[") { // the table's lines fit already
			lines[i] = cut(l, m.width)
		}
	}
	if len(lines) > m.height {
		lines = lines[:m.height]
	}
	return strings.Join(lines, "\n")
}

// keyLines is the keys' table, a line per provider over its keys.
func (m *topModel) keyLines() []string {
	t := &table{
		head:   []string{"NAME", "STATE", "WAIT", "FLIGHT", "RPM", "TPM", "REQS", "TOKENS", "LAST"},
		right:  map[int]bool{2: true, 3: true, 4: true, 5: true, 6: true, 7: true},
		shrink: map[int]bool{0: true, 8: true},
		color: func(_, col int, cell string) string {
			if col == 1 {
				return stateColor(cell)
			}
			return ""
		},
	}
	type group struct {
		name  string
		first int
	}
	var groups []group
	for _, n := range slices.Sorted(maps.Keys(m.st.Providers)) {
		groups = append(groups, group{n, len(t.rows)})
		for _, k := range m.st.Providers[n].Keys {
			lim := m.limits[n+"/"+k.Name]
			last := "-"
			if f := k.Failures; len(f) > 0 {
				l := f[len(f)-1]
				last = ago(m.at.Sub(l.At)) + " " + termSafe(l.Reason)
			}
			t.add(termSafe(k.Name), k.State, wait(k.CooldownSeconds), strconv.Itoa(k.InFlight),
				ofLimit(k.RequestsMinute, lim.RPM), ofLimit(k.TokensMinute, lim.TPM),
				compact(k.RequestsToday), compact(k.TokensToday), last)
		}
	}
	var b bytes.Buffer
	t.print(&b, look{Width: m.width, Color: m.color})
	table := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	out := []string{table[0]}
	for i, row := range table[1:] {
		for _, g := range groups {
			if g.first == i {
				out = append(out, g.name)
			}
		}
		out = append(out, row)
	}
	return out
}

// ofLimit is "12/60" when the key has a limit, else "12".
func ofLimit(n, limit int) string {
	if limit > 0 {
		return compact(n) + "/" + compact(limit)
	}
	return compact(n)
}

// compact is n in at most five characters: 950, 12.3k, 4.5M.
func compact(n int) string {
	switch {
	case n < 10000:
		return strconv.Itoa(n)
	case n < 1000000:
		return strconv.FormatFloat(math.Round(float64(n)/100)/10, 'f', -1, 64) + "k"
	default:
		return strconv.FormatFloat(math.Round(float64(n)/100000)/10, 'f', -1, 64) + "M"
	}
}

// ago is a short age: 5s, 3m, 2h.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	default:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
}
