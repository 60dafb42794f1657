// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
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
		Usage: "watch the keys live: state, the last hour, this minute against the limits, spend, failures",
		Description: "Refreshes every second from the running daemon (never starts one: it waits for it). A summary line " +
			"counts the keys by state, the requests llmkey refused in the last 5 minutes and today's spend. The keys are " +
			"grouped by provider, those set aside first. RPM and TPM are the last minute's requests and tokens, over the key's " +
			"limit when it has one; REQS and TOKENS are today's; SPENT is today's cost (over the daily budget when there is one); " +
			"LEFT is the share of its rate limits the provider's headers said is left; LAST is the latest failure; LAST HOUR " +
			"draws the requests of each minute, and a line under a key marks the minutes it was cooling (c) or parked (p). " +
			"A narrow terminal does without some columns. Up, Down, j, k, PgUp, PgDn, Space, Home and End scroll; q, Esc or " +
			"Ctrl-C quits. Needs a terminal: scripts read 'llmkey status --json' and the control API's /v1/history.",
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
	// offset is the first line of the keys shown: the view scrolls.
	offset int

	topStatus // the last answer
}

// topStatus is one look at the daemon.
type topStatus struct {
	st     *control.Status
	hist   *control.History // nil: the daemon keeps none (an older one)
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
	var hist *control.History
	if err == nil {
		if h, herr := m.client.History(ctx); herr == nil {
			hist = h
		}
	}
	limits := map[string]state.Key{}
	if cfg, _ := state.LoadAsWritten(m.paths.Keyfile); cfg != nil {
		for _, k := range cfg.Keys {
			limits[k.Ref()] = k
		}
	}
	return topStatus{st: st, hist: hist, err: err, limits: limits, at: time.Now()}
}

func (m *topModel) Init() tea.Cmd { return m.fetch }

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		return m, m.key(msg.String())
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

// key quits or scrolls; View keeps the offset in range.
func (m *topModel) key(k string) tea.Cmd {
	page := max(m.height-5, 1)
	switch k {
	case "q", "esc", "ctrl+c", "ctrl+d":
		return tea.Quit
	case "down", "j":
		m.offset++
	case "up", "k":
		m.offset--
	case "pgdown", " ", "f", "ctrl+f":
		m.offset += page
	case "pgup", "b", "ctrl+b":
		m.offset -= page
	case "home", "g":
		m.offset = 0
	case "end", "G":
		m.offset = math.MaxInt / 2
	}
	m.offset = max(m.offset, 0)
	return nil
}

func (m *topModel) View() string {
	title := "llmkey top   q quits"
	switch {
	case m.st == nil && m.err == nil:
		return m.screen([]string{title, "", "asking the daemon..."}, nil)
	case errors.Is(m.err, control.ErrNotRunning):
		return m.screen([]string{title, "", "the daemon is not running: llmkey start (this view waits for it)"}, nil)
	case m.err != nil:
		return m.screen([]string{title, "", termSafe(m.err.Error())}, nil)
	}
	v := topView{st: m.st, hist: m.hist, limits: m.limits, at: m.at, width: m.width, color: m.color}
	head, body := v.lines()
	return m.screen(head, body)
}

// screen is head, then as much of body as fits from the offset, with a
// line that says what is above and below when not all of it fits; no
// line wider than the terminal, none beyond its height.
func (m *topModel) screen(head, body []string) string {
	if m.height < len(head)+2 && len(head) > 1 {
		head = head[1:2] // the summary, on a tiny terminal
	}
	room := max(m.height-len(head), 0)
	lines := append([]string{}, head...)
	if len(body) <= room {
		m.offset = 0
		lines = append(lines, body...)
	} else {
		room = max(room-1, 0) // for the line that says what is hidden
		m.offset = min(m.offset, len(body)-room)
		lines = append(lines, body[m.offset:m.offset+room]...)
		lines = append(lines, paint("7", moreLine(m.offset, len(body)-m.offset-room), m.color))
	}
	for i, l := range lines {
		if visibleWidth(l) > m.width {
			lines[i] = fitText(stripANSI(l), m.width)
		}
	}
	return strings.Join(lines[:min(len(lines), max(m.height, 1))], "\n")
}

// moreLine says how many lines are above and below the screen, and how
// to reach them.
func moreLine(above, below int) string {
	var parts []string
	if above > 0 {
		parts = append(parts, fmt.Sprintf("↑ %d more", above))
	}
	if below > 0 {
		parts = append(parts, fmt.Sprintf("+%d more ↓", below))
	}
	return strings.Join(parts, "  ") + "  (↑↓ j k PgUp PgDn Home End)"
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
