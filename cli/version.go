// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

func ConfigureVersionCommand(app *ucli.App) {
	ucli.VersionPrinter = func(c *ucli.Context) { printVersion(c.Context, c.App.Writer, keyfileArg(c)) }
	app.Commands = append(app.Commands, &ucli.Command{
		Name:        "version",
		Usage:       "print llmkey's version, and the running daemon's",
		Description: "The same as llmkey --version. A daemon of another version keeps running after an upgrade until 'llmkey restart'.",
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			printVersion(c.Context, c.App.Writer, keyfileArg(c))
			return nil
		},
	})
}

// printVersion prints this llmkey's version and, if one runs, the
// daemon's; it never starts one.
func printVersion(ctx context.Context, w io.Writer, keyfile string) {
	fmt.Fprintf(w, "llmkey %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	p, err := state.ResolvePaths(os.Getenv, keyfile)
	if err != nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if st, err := control.NewClient(p).Status(ctx); err == nil && st.Running {
		note := ""
		if st.Version != Version {
			note = " (another version: llmkey restart)"
		}
		fmt.Fprintf(w, "daemon %s, pid %d%s\n", st.Version, st.PID, note)
	}
}
