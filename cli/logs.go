// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// LogsCommandInput is what "llmkey logs" was asked to do.
type LogsCommandInput struct {
	Paths  state.Paths
	Lines  int // the last N; 0: all
	Follow bool
	// Raw prints the log's own lines (logfmt) on a terminal too.
	Raw bool
	// Only the lines at Level or above, about Key (PROVIDER or
	// PROVIDER/NAME), since Since; "": every line.
	Level, Key, Since string
}

func ConfigureLogsCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "logs",
		Usage: "print the daemon's log (daemon.log in the state dir, or where the running daemon logs); -f follows it",
		Description: "The log of the running daemon, from where it says it logs: daemon.log in the state dir for a daemon llmkey " +
			"started, the file launchd points a service's standard error at, or systemd's journal (through journalctl " +
			"--user-unit llmkey.service). With no daemon running, daemon.log. -f keeps printing what the daemon writes, " +
			"across its rotation to daemon.log.1, until Ctrl-C. On a terminal each line is shown short, to fit its width: local " +
			"time, level (coloured), the key, what happened and what else it says; --raw, or a pipe, prints the log's own " +
			"logfmt lines. --level, --key and --since keep the lines at that level or above, about that key (PROVIDER/NAME, " +
			"or every key of PROVIDER), since then (15m, 2h, 1d, today or yesterday from local midnight, a date or an RFC 3339 " +
			"time); with --since and no -n, every line since then.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
			&ucli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "print the last `N` lines (0: all)"},
			&ucli.BoolFlag{Name: "raw", Usage: "print the log's own logfmt lines, also on a terminal"},
			&ucli.StringFlag{Name: "level", Usage: "only lines at `LEVEL` or above: debug, info, warn, error"},
			&ucli.StringFlag{Name: "key", Usage: "only lines about `KEY`: PROVIDER/NAME, or PROVIDER for all its keys"},
			&ucli.StringFlag{Name: "since", Usage: "only lines since `WHEN`: 15m, 2h, 1d, today, yesterday, a date or a time"},
			noColorFlag(),
		},
		Action: withPaths(func(c *ucli.Context, p state.Paths) error {
			in := LogsCommandInput{Paths: p, Lines: c.Int("lines"), Follow: c.Bool("follow"), Raw: c.Bool("raw"),
				Level: c.String("level"), Key: c.String("key"), Since: c.String("since")}
			if in.Since != "" && !c.IsSet("lines") {
				in.Lines = 0
			}
			return LogsCommand(c.Context, in, streams(c))
		}),
	})
}

// LogsCommand prints the end of the daemon's log, and follows it: the
// file a running daemon says it writes (daemon.log, or the one a service
// manager points its standard error at), systemd's journal through
// journalctl, or else daemon.log.
func LogsCommand(ctx context.Context, in LogsCommandInput, s Streams) error {
	if ctx == nil {
		ctx = context.Background()
	}
	out, err := newLogOut(in, s)
	if err != nil {
		return err
	}
	s.Out = out
	path := in.Paths.LogPath()
	if st, err := control.NewClient(in.Paths).Status(ctx); err == nil && st.Log != nil {
		switch {
		case st.Log.JournalUnit != "":
			return journalLogs(ctx, st.PID, st.Log.JournalUnit, in, s)
		case st.Log.Path != "":
			path = st.Log.Path
		default:
			return fail("it is where that daemon's standard error goes (the terminal or pipe it was started with); a daemon llmkey starts logs to daemon.log",
				"the running daemon (pid %d) logs to its standard error, not to a file", st.PID)
		}
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !in.Follow {
		hint := "the daemon writes it once it runs: llmkey start"
		if here, serr := serviceFilesHere(in.Paths); serr == nil && runtime.GOOS != "darwin" && serviceManaged(runtime.GOOS, here.files) {
			hint = "the service's daemon logs to systemd's journal: journalctl --user-unit llmkey.service"
		}
		return fail(hint, "no daemon log at %s yet", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail("check that "+in.Paths.StateDir+" is yours", "read %s: %v", path, err)
	}
	data = filtered(data, out.filter)
	if in.Lines > 0 {
		data = lastLines(data, in.Lines)
	}
	s.Out.Write(data)
	if !in.Follow {
		return nil
	}
	offset := int64(len(data))
	if fi, err := os.Stat(path); err == nil {
		offset = fi.Size()
	}
	followLog(ctx, path, offset, s.Out)
	return nil
}

// followLog copies to w what is written to the file at path after
// offset, and then from the start of each new file there (the log
// rotated), until ctx ends.
func followLog(ctx context.Context, path string, offset int64, w io.Writer) {
	var last os.FileInfo
	last, _ = os.Stat(path)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue // rotated or removed: the daemon puts it back
		}
		if last == nil || !os.SameFile(fi, last) || fi.Size() < offset {
			offset, last = 0, fi // a new file: from its start
		}
		if fi.Size() == offset {
			continue
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		f.Seek(offset, io.SeekStart)
		n, _ := io.Copy(w, f)
		f.Close()
		offset += n
	}
}

// lastLines is the end of data: its last n lines.
func lastLines(data []byte, n int) []byte {
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(data[:end], '\n')
		if j < 0 {
			return data
		}
		end = j
	}
	return data[end+1:]
}

// journalLogs prints, and follows, the journal of the daemon's unit.
func journalLogs(ctx context.Context, pid int, unit string, in LogsCommandInput, s Streams) error {
	args := []string{"--user-unit", unit, "--output", "cat", "--no-pager"}
	switch {
	case in.Lines > 0:
		args = append(args, "--lines", strconv.Itoa(in.Lines))
	case in.Follow:
		args = append(args, "--lines", "all")
	}
	if in.Follow {
		args = append(args, "--follow")
	}
	line := "journalctl " + strings.Join(args, " ")
	s.info("the daemon (pid %d) logs to systemd's journal: %s", pid, line)
	tool, err := exec.LookPath("journalctl")
	if err != nil {
		return fail("run "+line+" where journalctl is installed", "journalctl is not on PATH")
	}
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stdout, cmd.Stderr = s.Out, s.Err
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fail("run "+line+" to see why", "journalctl failed: %v", err)
	}
	return nil
}
