package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// LogsCommandInput is what "llmkey logs" was asked to do.
type LogsCommandInput struct {
	Paths  state.Paths
	Lines  int // the last N; 0: all
	Follow bool
}

func ConfigureLogsCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "logs",
		Usage: "print the daemon's log (daemon.log in the state dir); -f follows it",
		Description: "The log of a daemon started by llmkey (a service's is with its service manager: journalctl --user -u llmkey). " +
			"-f keeps printing what the daemon writes, across its rotation to daemon.log.1, until Ctrl-C.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
			&ucli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "print the last `N` lines (0: all)"},
		},
		Action: withPaths(func(c *ucli.Context, p state.Paths) error {
			return LogsCommand(c.Context, LogsCommandInput{Paths: p, Lines: c.Int("lines"), Follow: c.Bool("follow")}, streams(c))
		}),
	})
}

// LogsCommand prints the end of daemon.log, and follows it.
func LogsCommand(ctx context.Context, in LogsCommandInput, s Streams) error {
	path := in.Paths.LogPath()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !in.Follow {
		return fail("the daemon writes it once it runs: llmkey start", "no daemon log at %s yet", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail("check that "+in.Paths.StateDir+" is yours", "read %s: %v", path, err)
	}
	if in.Lines > 0 {
		data = lastLines(data, in.Lines)
	}
	s.Out.Write(data)
	if !in.Follow {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	offset := int64(len(data))
	if fi, err := os.Stat(path); err == nil {
		offset = fi.Size()
	}
	var last os.FileInfo
	last, _ = os.Stat(path)
	for {
		select {
		case <-ctx.Done():
			return nil
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
		n, _ := io.Copy(s.Out, f)
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
