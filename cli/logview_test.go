// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var sampleLog = strings.Join([]string{
	`time=2026-11-24T10:00:00.000+00:00 level=INFO msg=ready pid=42 proxy=http://127.0.0.1:5565 keyfile=/home/u/.config/llmkey/keys.toml`,
	`time=2026-11-24T10:01:00.000+00:00 level=INFO msg="attempt failed" provider=openai model=gpt-4o-mini-2024-07-18 method=POST path=/openai/chat/completions key=openai/work attempt=1 class=rate-limited status=429 reason="429 rate limited (rate_limit_exceeded): Rate limit reached for requests" wait=20s retry=true`,
	`time=2026-11-24T10:02:00.000+00:00 level=WARN msg="stream ended early" provider=anthropic model=claude-x method=POST path=/anthropic/v1/messages key=personal status=200 bytes=4096 err="stream idle timeout: nothing for 5m0s ([daemon] stream_idle_timeout)" ms=300000`,
	`time=2026-11-24T10:03:00.000+00:00 level=ERROR msg="keyfile not reloaded; still serving the last good one" reason=watch err="line 3: unknown provider \"opnai\""`,
	`not logfmt at all`,
}, "\n") + "\n"

func logsThrough(t *testing.T, f logFilter, short bool, l look) string {
	t.Helper()
	var b bytes.Buffer
	o := &logOut{w: &b, filter: f, short: short, look: l}
	// In pieces, as a followed file arrives.
	for _, chunk := range []string{sampleLog[:37], sampleLog[37:400], sampleLog[400:]} {
		o.Write([]byte(chunk))
	}
	return b.String()
}

// On a terminal each line is short: it fits 80 columns, says the time,
// level, key and what happened, and colours the levels.
func TestLogsShortForm(t *testing.T) {
	text := logsThrough(t, logFilter{anyLevel: true}, true, look{Width: 80, Color: true})
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), text)
	}
	for _, l := range lines {
		if w := visibleWidth(l); w > 80 {
			t.Errorf("a line of %d columns: %q", w, l)
		}
	}
	plainText := stripANSI(text)
	for _, want := range []string{"INF openai/work attempt failed  status=429  class=rate-limited", "WRN anthropic/personal stream ended early  status=200  err=", "ERR keyfile not reloaded"} {
		if !strings.Contains(plainText, want) {
			t.Errorf("no %q in:\n%s", want, plainText)
		}
	}
	if strings.Contains(plainText, "path=") || strings.Contains(plainText, "time=") {
		t.Errorf("the short form repeats what it shows otherwise:\n%s", plainText)
	}
	if !strings.Contains(text, "\x1b[33mWRN\x1b[0m") || !strings.Contains(text, "\x1b[31mERR\x1b[0m") {
		t.Errorf("levels not coloured:\n%q", text)
	}
	if strings.Contains(logsThrough(t, logFilter{anyLevel: true}, true, look{Width: 80}), "\x1b[") {
		t.Error("coloured without colour")
	}
}

// Raw (a pipe, --raw) is the log as it is; the filters keep the lines
// of a level and above, of a key or provider, since a time.
func TestLogsFilters(t *testing.T) {
	if got := logsThrough(t, logFilter{anyLevel: true}, false, look{}); got != sampleLog {
		t.Errorf("raw changed the log:\n%s", got)
	}
	now := time.Date(2026, 11, 24, 10, 5, 0, 0, time.UTC)
	for _, c := range []struct {
		level, key, since string
		want              []string
	}{
		{"warn", "", "", []string{"stream ended early", "keyfile not reloaded"}},
		{"", "openai", "", []string{"attempt failed"}},
		{"", "anthropic/personal", "", []string{"stream ended early"}},
		{"", "openai/personal", "", nil},
		{"", "", "3m30s", []string{"stream ended early", "keyfile not reloaded"}},
		{"error", "", "1h", []string{"keyfile not reloaded"}},
	} {
		f, err := newLogFilter(c.level, c.key, c.since, now)
		if err != nil {
			t.Fatal(err)
		}
		got := logsThrough(t, f, false, look{})
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if got == "" {
			lines = nil
		}
		if len(lines) != len(c.want) {
			t.Errorf("--level %q --key %q --since %q: %d lines:\n%s", c.level, c.key, c.since, len(lines), got)
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(lines[i], w) || !strings.HasPrefix(lines[i], "time=") {
				t.Errorf("--level %q --key %q: line %d %q, want %q as logged", c.level, c.key, i, lines[i], w)
			}
		}
		if f2 := filtered([]byte(sampleLog), f); string(f2) != got {
			t.Errorf("filtered and the writer disagree:\n%s\n%s", f2, got)
		}
	}
	for _, bad := range [][2]string{{"loud", ""}, {"", "soon"}} {
		if _, err := newLogFilter(bad[0], "", bad[1], now); ExitCode(err) != ExitUsage {
			t.Errorf("--level %q --since %q: %v", bad[0], bad[1], err)
		}
	}
}
