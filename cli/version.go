// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// Version, Commit and Date say what this llmkey was built from. A release
// build sets them (-ldflags "-X github.com/llmkey/llmkey/cli.Version=1.2.3
// -X ...cli.Commit=SHA -X ...cli.Date=RFC3339", the commit's date, so
// that the same tag builds the same binary). Any other build leaves them
// empty, and they are read from the build info at start: the module
// version of a go install llmkey@v1.2.3, the commit and its date of a
// build in a git checkout, else the version "devel". The daemon reports
// Version, and the CLI warns when it is not its own.
var Version, Commit, Date string

// modified is whether a build in a git checkout had changes not committed.
var modified bool

func init() {
	bi, _ := debug.ReadBuildInfo()
	Version, Commit, Date, modified = fromBuildInfo(Version, Commit, Date, bi)
}

// fromBuildInfo fills in what the linker did not set from bi (nil when
// the binary has none).
func fromBuildInfo(version, commit, date string, bi *debug.BuildInfo) (string, string, string, bool) {
	dirty := false
	if bi != nil {
		if v := bi.Main.Version; version == "" && v != "" && v != "(devel)" {
			version = trimV(v)
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				commit = s.Value
			case s.Key == "vcs.time" && date == "":
				date = s.Value
			case s.Key == "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if version == "" {
		version = "devel"
	}
	return trimV(version), commit, date, dirty
}

// trimV drops the "v" of a Go module version (v1.2.3), so that go install
// and release builds say a version alike.
func trimV(v string) string {
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		return v[1:]
	}
	return v
}

type VersionCommandInput struct {
	Keyfile string
	JSON    bool
}

// VersionInfo is what version --json prints.
type VersionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Date     string `json:"date,omitempty"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	// Daemon is the running daemon's, when one runs.
	Daemon *DaemonVersion `json:"daemon,omitempty"`
}

type DaemonVersion struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
}

func ConfigureVersionCommand(app *ucli.App) {
	ucli.VersionPrinter = func(c *ucli.Context) {
		VersionCommand(c.Context, VersionCommandInput{Keyfile: keyfileArg(c)}, streams(c))
	}
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "version",
		Usage: "print llmkey's version, commit and build, and the running daemon's version",
		Description: "The same as llmkey --version. A release build names its version, commit and the commit's date; go install names " +
			"the module version; a build in a git checkout its commit. A daemon of another version keeps running after an upgrade until 'llmkey restart'. " +
			"--json prints version, commit, modified, date, go, os, arch and daemon {version, pid}.",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			return VersionCommand(c.Context, VersionCommandInput{Keyfile: keyfileArg(c), JSON: c.Bool("json")}, streams(c))
		},
	})
}

// VersionCommand prints this llmkey's version and, if one runs, the
// daemon's; it never starts one.
func VersionCommand(ctx context.Context, in VersionCommandInput, s Streams) error {
	v := VersionInfo{Version: Version, Commit: Commit, Modified: modified, Date: Date,
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, Daemon: runningDaemon(ctx, in.Keyfile)}
	if in.JSON {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	writeVersion(s.Out, v)
	return nil
}

func writeVersion(w io.Writer, v VersionInfo) {
	build := ""
	if v.Commit != "" {
		build = "commit " + v.Commit[:min(12, len(v.Commit))]
		if v.Modified {
			build += ", modified"
		}
		if v.Date != "" {
			build += ", " + v.Date
		}
		build += "; "
	}
	fmt.Fprintf(w, "llmkey %s (%s%s, %s/%s)\n", v.Version, build, v.Go, v.OS, v.Arch)
	if d := v.Daemon; d != nil {
		note := ""
		if d.Version != v.Version {
			note = " (another version: llmkey restart)"
		}
		fmt.Fprintf(w, "daemon %s, pid %d%s\n", d.Version, d.PID, note)
	}
}

// runningDaemon is the version of the daemon that serves keyfile, if one
// runs.
func runningDaemon(ctx context.Context, keyfile string) *DaemonVersion {
	p, err := state.ResolvePaths(os.Getenv, keyfile)
	if err != nil {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if st, err := control.NewClient(p).Status(ctx); err == nil && st.Running {
		return &DaemonVersion{Version: st.Version, PID: st.PID}
	}
	return nil
}
