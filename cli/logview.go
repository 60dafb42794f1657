// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"

	"github.com/llmkey/llmkey/state"
)

// The daemon logs logfmt (slog's text form: key=value, quoted where
// needed). logs prints it as it is to a pipe or with --raw; on a terminal
// it prints a short form that fits the width: time, level, key, what
// happened. Both take --level, --key and --since.

// logFilter is which lines logs prints.
type logFilter struct {
	level    slog.Level
	anyLevel bool
	key      string    // PROVIDER or PROVIDER/NAME; "": every line
	since    time.Time // zero: every line
}

// newLogFilter reads --level, --key and --since at now.
func newLogFilter(level, key, since string, now time.Time) (logFilter, error) {
	f := logFilter{anyLevel: level == "", key: strings.TrimSpace(key)}
	if level != "" {
		if err := f.level.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
			return f, usageError("--level takes debug, info, warn or error", "unknown --level %q", level)
		}
	}
	if since != "" {
		t, err := logSince(since, now)
		if err != nil {
			return f, err
		}
		f.since = t
	}
	return f, nil
}

// logSince is when --since begins: a duration back from now (90s, 15m,
// 2h, 1d), today or yesterday (from local midnight, as the log's times
// are shown), a date, or a time (RFC 3339).
func logSince(s string, now time.Time) (time.Time, error) {
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	switch s {
	case "today":
		return midnight, nil
	case "yesterday":
		return midnight.AddDate(0, 0, -1), nil
	}
	if t, err := time.ParseInLocation(state.DayFormat, s, now.Location()); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := state.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError("--since takes a duration such as 15m or 2h, today, yesterday, a date (2026-11-24) or a time (RFC 3339)", "cannot read --since %q", s)
}

func (f logFilter) none() bool { return f.anyLevel && f.key == "" && f.since.IsZero() }

// keeps reports whether l passes the filter. A line logs cannot read
// passes unless a filter needs what it would say.
func (f logFilter) keeps(l logLine, ok bool) bool {
	if !ok {
		return f.none()
	}
	if !f.anyLevel {
		var lv slog.Level
		if lv.UnmarshalText([]byte(l.level)) == nil && lv < f.level {
			return false
		}
	}
	if !f.since.IsZero() && !l.time.IsZero() && l.time.Before(f.since) {
		return false
	}
	if f.key != "" {
		ref := l.ref()
		return ref == f.key || strings.HasPrefix(ref, f.key+"/") || (!strings.Contains(f.key, "/") && l.attr("provider") == f.key)
	}
	return true
}

// logLine is one line of the log, read.
type logLine struct {
	time  time.Time
	level string
	msg   string
	attrs [][2]string // the others, in order
}

func (l logLine) attr(k string) string {
	for _, a := range l.attrs {
		if a[0] == k {
			return a[1]
		}
	}
	return ""
}

// ref is the key a line is about, PROVIDER/NAME, or its provider; "".
func (l logLine) ref() string {
	key, prov := l.attr("key"), l.attr("provider")
	switch {
	case strings.Contains(key, "/"):
		return key
	case key != "" && prov != "":
		return prov + "/" + key
	}
	return prov
}

// parseLogfmt reads a line of logfmt; false when it is not one.
func parseLogfmt(s string) (logLine, bool) {
	var l logLine
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimLeft(s, " ") {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \"") {
			return l, false
		}
		k, v, rest, ok := s[:eq], "", s[eq+1:], true
		if strings.HasPrefix(rest, `"`) {
			var q string
			if q, ok = quotedPrefix(rest); !ok {
				return l, false
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			v, rest = rest[:sp], rest[sp:]
		} else {
			v, rest = rest, ""
		}
		switch k {
		case "time":
			l.time, _ = time.Parse(time.RFC3339Nano, v)
		case "level":
			l.level = v
		case "msg":
			l.msg = v
		default:
			l.attrs = append(l.attrs, [2]string{k, v})
		}
		s = rest
	}
	return l, l.msg != "" || l.level != ""
}

// quotedPrefix is the Go-quoted string s begins with.
func quotedPrefix(s string) (string, bool) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[:i+1], true
		}
	}
	return "", false
}

// levelStyles are each level's short name and colour.
var levelStyles = map[string][2]string{"DEBUG": {"DBG", "2"}, "INFO": {"INF", "32"}, "WARN": {"WRN", "33"}, "ERROR": {"ERR", "31"}}

// shortLine is l in a line of at most width columns (0: any): local
// time, level, key, the message, then what else it says (what came of it
// first; not the request's method and path), as much as fits.
func shortLine(l logLine, width int, color bool) string {
	var segs []seg
	if !l.time.IsZero() {
		segs = append(segs, seg{l.time.Local().Format("15:04:05") + " ", ""})
	}
	st, ok := levelStyles[l.level]
	if !ok {
		st = [2]string{fitText(l.level, 3), ""}
	}
	segs = append(segs, seg{padTo(st[0], 3), st[1]}, seg{" ", ""})
	if ref := l.ref(); ref != "" {
		segs = append(segs, seg{termSafe(ref), "1"}, seg{" ", ""})
	}
	segs = append(segs, seg{termSafe(l.msg), ""})
	for _, a := range shortAttrs(l.attrs) {
		v := a[1]
		if strings.ContainsAny(v, " =\"") || v == "" {
			v = strconv.Quote(v)
		}
		segs = append(segs, seg{"  " + a[0] + "=", "2"}, seg{termSafe(v), ""})
	}
	return fitSegs(segs, width, color)
}

// shortAttrs are a line's attributes for the short form: those that say
// what came of it first, then the others, without those it shows
// otherwise.
func shortAttrs(attrs [][2]string) [][2]string {
	first := []string{"status", "class", "code", "reason", "err", "detail", "wait", "retry", "attempts", "model"}
	rank := func(k string) int {
		for i, f := range first {
			if f == k {
				return i
			}
		}
		return len(first)
	}
	var out [][2]string
	for _, a := range attrs {
		switch a[0] {
		case "provider", "key", "method", "path":
			continue
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b [2]string) int { return rank(a[0]) - rank(b[0]) })
	return out
}

// seg is a piece of a line and its colour ("": none).
type seg struct{ text, color string }

// fitSegs joins segs, coloured when color, cut to width columns (0: any)
// with "…" where it was cut.
func fitSegs(segs []seg, width int, color bool) string {
	total := 0
	for _, s := range segs {
		total += runewidth.StringWidth(s.text)
	}
	var b strings.Builder
	left := width
	for _, s := range segs {
		text := s.text
		if width > 0 && total > width {
			w := runewidth.StringWidth(text)
			if w >= left {
				b.WriteString(paint(s.color, fitText(text+"…", left), color))
				break
			}
			left -= w
		}
		b.WriteString(paint(s.color, text, color))
	}
	return b.String()
}

// newLogOut is where logs writes the daemon's log: s.Out, filtered as in
// says, in the short form on a terminal unless in.Raw.
func newLogOut(in LogsCommandInput, s Streams) (*logOut, error) {
	f, err := newLogFilter(in.Level, in.Key, in.Since, time.Now())
	if err != nil {
		return nil, err
	}
	return &logOut{w: s.Out, filter: f, short: s.Look.Width > 0 && !in.Raw, look: s.Look}, nil
}

// logOut writes the daemon's log as logs was asked to: filtered, and
// short on a terminal. It holds a line that has not ended yet.
type logOut struct {
	w      io.Writer
	filter logFilter
	short  bool
	look   look
	part   []byte
}

func (o *logOut) Write(p []byte) (int, error) {
	if !o.short && o.filter.none() {
		return o.w.Write(p)
	}
	o.part = append(o.part, p...)
	for {
		i := bytes.IndexByte(o.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(o.part[:i])
		o.part = o.part[i+1:]
		if err := o.line(line); err != nil {
			return len(p), err
		}
	}
}

func (o *logOut) line(s string) error {
	l, ok := parseLogfmt(s)
	if !o.filter.keeps(l, ok) {
		return nil
	}
	if o.short && ok {
		s = shortLine(l, o.look.Width, o.look.Color)
	} else if o.short {
		s = fitText(termSafe(s), o.look.Width)
	}
	_, err := io.WriteString(o.w, s+"\n")
	return err
}

// filtered is data's lines that pass f.
func filtered(data []byte, f logFilter) []byte {
	if f.none() {
		return data
	}
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if l, ok := parseLogfmt(string(line)); len(line) > 0 && f.keeps(l, ok) {
			out.Write(line)
		}
	}
	return out.Bytes()
}
