// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// The .deb and .rpm packages install systemd user units for every user
// of the machine, which each user enables for themselves (systemctl
// --user enable --now llmkey.socket). They are written by the code that
// writes service install's, so that the two cannot drift, but run
// /usr/bin/llmkey with the default paths and port: the user manager's
// runtime dir (%t) is the daemon's $XDG_RUNTIME_DIR. A user's own units
// of the same names (service install's, in ~/.config/systemd/user) take
// their place.

const packagedUnitDir = "/usr/lib/systemd/user"

// packagedMark starts each packaged unit. It is not serviceMark: install
// and uninstall never take these for files of the user's.
const packagedMark = "Installed by the llmkey package for every user: systemctl --user enable --now llmkey.socket starts it with your session. " +
	"llmkey service install writes units of your own in ~/.config/systemd/user, which take the place of these."

// PackagedUnits are the units a package installs in packagedUnitDir.
func PackagedUnits() []serviceFile {
	service, socket := systemdUnits(packagedMark, "/usr/bin/llmkey", "", state.DefaultListen, "%t/llmkey/sock")
	return []serviceFile{{filepath.Join(packagedUnitDir, "llmkey.service"), service}, {filepath.Join(packagedUnitDir, "llmkey.socket"), socket}}
}

// systemdUnits are the daemon's service and its socket, from the parts
// as a unit file spells them (quoted and escaped): the program, the
// service's Environment= lines, the proxy's port and the control socket.
func systemdUnits(mark, program, envLines, listen, controlSocket string) (service, socket string) {
	// systemd's start limit counts every start: a stop, then a command
	// that wakes the daemon again, is one, and the default (5 in 10 s)
	// would fail the socket under a script that restarts it. 30 a minute
	// still stops a daemon that fails at every start, a second apart.
	service = "# " + mark + "\n[Unit]\nDescription=llmkey: LLM API keys behind a local proxy\n" +
		"Requires=llmkey.socket\nAfter=llmkey.socket\nStartLimitIntervalSec=60\nStartLimitBurst=30\n\n[Service]\nType=simple\n" +
		"ExecStart=" + program + " daemon --wait\n" + envLines +
		"Restart=on-failure\nRestartSec=1\nNoNewPrivileges=yes\nUMask=0077\n\n[Install]\nWantedBy=default.target\n"
	socket = "# " + mark + "\n[Unit]\nDescription=llmkey: the proxy port and control socket\n\n" +
		"[Socket]\nListenStream=" + listen + "\nListenStream=" + controlSocket + "\nSocketMode=0600\nDirectoryMode=0700\n" +
		"Service=llmkey.service\n\n[Install]\nWantedBy=sockets.target\n"
	return service, socket
}

// packagedUnitsCommand writes the packaged units into a directory, for
// the release build's packages (and any other packager).
func packagedUnitsCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "units",
		Usage:     "write the systemd user units a package installs in " + packagedUnitDir + " into DIR",
		ArgsUsage: "DIR",
		Hidden:    true,
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 1, 1); err != nil {
				return err
			}
			dir := c.Args().First()
			for _, f := range PackagedUnits() {
				if err := writeUserFile(filepath.Join(dir, filepath.Base(f.Path)), f.Content); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// packagedHere lists the packaged units present on this machine to w, and
// reports whether there are any.
func packagedHere(w io.Writer, own []serviceFile) bool {
	present := false
	for _, f := range PackagedUnits() {
		if _, err := os.Stat(f.Path); err != nil {
			continue
		}
		present = true
		note := ""
		for _, o := range own {
			if filepath.Base(o.Path) == filepath.Base(f.Path) && serviceFileState(o) != fileNotInstalled {
				note = " (your own, " + o.Path + ", takes its place)"
			}
		}
		fmt.Fprintf(w, "%s: installed by the llmkey package for every user%s\n", f.Path, note)
	}
	return present
}

// serviceManaged reports whether the daemon is the service manager's to
// start: the user's own units are installed, or the package's socket is
// enabled for this user.
func serviceManaged(goos string, own []serviceFile) bool {
	if serviceFileState(own[0]) != fileNotInstalled {
		return true
	}
	if goos != "linux" {
		return false
	}
	if _, err := os.Stat(PackagedUnits()[1].Path); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "systemctl", "--user", "is-enabled", "llmkey.socket").Output()
	return strings.TrimSpace(string(out)) == "enabled"
}

// packagedUninstallNote says, when uninstall found none of the user's
// units to remove, what to do with the package's.
func packagedUninstallNote(s Streams) {
	if _, err := os.Stat(PackagedUnits()[1].Path); err == nil {
		s.done("the llmkey package's units in %s are for every user: systemctl --user disable --now llmkey.socket stops yours from starting; the package manager removes them", packagedUnitDir)
	}
}
