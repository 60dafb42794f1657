package cli

import (
	"fmt"
	"runtime"

	ucli "github.com/urfave/cli/v2"
)

func ConfigureVersionCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "version",
		Usage: "print llmkey's version",
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "llmkey %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	})
}
