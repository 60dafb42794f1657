// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// plistValue parses one plist value after its opening tag.
func plistValue(t *testing.T, d *xml.Decoder, start xml.StartElement) any {
	t.Helper()
	switch start.Name.Local {
	case "string", "integer":
		var s string
		if err := d.DecodeElement(&s, &start); err != nil {
			t.Fatal(err)
		}
		return s
	case "true", "false":
		d.Skip()
		return start.Name.Local == "true"
	case "array":
		var out []any
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				out = append(out, plistValue(t, d, tok))
			case xml.EndElement:
				return out
			}
		}
	case "dict":
		out := map[string]any{}
		key := ""
		for {
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				if tok.Name.Local == "key" {
					d.DecodeElement(&key, &tok)
					continue
				}
				out[key] = plistValue(t, d, tok)
			case xml.EndElement:
				return out
			}
		}
	}
	t.Fatalf("unknown plist element %s", start.Name.Local)
	return nil
}

// parsePlist reads the top dict of an XML plist.
func parsePlist(t *testing.T, content string) map[string]any {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(content))
	var top map[string]any
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return top
		}
		if err != nil {
			t.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "dict" {
			top = plistValue(t, d, se).(map[string]any)
		}
	}
}

// checkLaunchdFields checks every field of the agent as launchd reads it.
func checkLaunchdFields(t *testing.T, top map[string]any, p state.Paths) {
	t.Helper()
	env, _ := top["EnvironmentVariables"].(map[string]any)
	keep, _ := top["KeepAlive"].(map[string]any)
	args, _ := top["ProgramArguments"].([]any)
	switch {
	case top["Label"] != "dev.llmkey.daemon":
		t.Errorf("Label: %v", top["Label"])
	case len(args) != 3 || args[0] != "/opt/llmkey <1>/bin/llmkey" || args[1] != "daemon" || args[2] != "--wait":
		t.Errorf("ProgramArguments: %v", args)
	case env["LLMKEY_KEYFILE"] != p.Keyfile || env["LLMKEY_STATE_DIR"] != p.StateDir || env["LLMKEY_RUNTIME_DIR"] != p.RuntimeDir:
		t.Errorf("EnvironmentVariables: %v", env)
	case top["RunAtLoad"] != true || keep["SuccessfulExit"] != false:
		t.Errorf("RunAtLoad %v, KeepAlive %v", top["RunAtLoad"], keep)
	case top["Umask"] != "63" || top["ProcessType"] != "Background":
		t.Errorf("Umask %v ProcessType %v", top["Umask"], top["ProcessType"])
	case top["StandardErrorPath"] != p.StateDir+"/launchd.log":
		t.Errorf("StandardErrorPath: %v", top["StandardErrorPath"])
	}
	if len(top) != 8 {
		t.Errorf("%d fields, want the 8 checked: %v", len(top), top)
	}
}

// The launchd agent, generated for macOS here and parsed back: every
// field as launchd reads it.
func TestLaunchdPlistParsesBack(t *testing.T) {
	p, files := launchdAgent(t)
	checkLaunchdFields(t, parsePlist(t, files[0].Content), p)
	if !strings.Contains(files[0].Content, serviceMark) {
		t.Error("no mark for uninstall")
	}
}

// launchdAgent is the agent for a user whose paths need every escape.
func launchdAgent(t *testing.T) (state.Paths, []serviceFile) {
	t.Helper()
	p := state.Paths{Keyfile: "/Users/a b/keys & more.toml", StateDir: "/Users/a b/.local/state/llmkey", RuntimeDir: "/Users/a b/.cache/llmkey/run"}
	files := ServiceFiles("darwin", "/Users/a b", "/opt/llmkey <1>/bin/llmkey", p, "127.0.0.1:5565")
	if len(files) != 1 || files[0].Path != "/Users/a b/Library/LaunchAgents/dev.llmkey.daemon.plist" {
		t.Fatalf("files: %+v", files)
	}
	return p, files
}

// The agent compiled by another plist implementation than ours: libplist
// (Debian's libplist-utils, which iOS tooling uses) turns it into the
// binary form plutil -convert binary1 makes on macOS, and back into XML,
// and every field must have come through. A plist that is not one (here,
// an unescaped "&") makes no binary.
func TestLaunchdPlistCompilesWithLibplist(t *testing.T) {
	tool, err := exec.LookPath("plistutil")
	if err != nil {
		msg := "plistutil is not installed: install it to run this test (Debian: apt-get install libplist-utils; .ci/run installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	compile := func(xmlText string) ([]byte, error) {
		src, bin := filepath.Join(dir, "agent.plist"), filepath.Join(dir, "agent.bplist")
		os.Remove(bin)
		if err := os.WriteFile(src, []byte(xmlText), 0o600); err != nil {
			t.Fatal(err)
		}
		// plistutil says ERROR but exits 0 when it cannot convert: the
		// output file is the verdict.
		out, _ := exec.Command(tool, "-i", src, "-o", bin, "-f", "bin").CombinedOutput()
		b, err := os.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("plistutil made no binary plist: %s", out)
		}
		return b, nil
	}
	p, files := launchdAgent(t)
	b, err := compile(files[0].Content)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("bplist00")) {
		t.Fatalf("not a binary plist: %q", b[:min(len(b), 16)])
	}
	bin := filepath.Join(dir, "agent.bplist")
	back, err := exec.Command(tool, "-i", bin, "-f", "xml").Output()
	if err != nil {
		t.Fatal(err)
	}
	checkLaunchdFields(t, parsePlist(t, string(back)), p)

	// With the line listing the directories install made.
	made := withMade(files[0].Content, []string{"/Users/a b/Library/LaunchAgents", "/Users/x--y-"})
	if _, err := compile(made); err != nil {
		t.Errorf("with the directories made: %v\n%s", err, made)
	}

	broken := strings.Replace(files[0].Content, "keys &amp; more", "keys & more", 1)
	if broken == files[0].Content {
		t.Fatal("the agent has no escaped & to break")
	}
	if _, err := compile(broken); err == nil {
		t.Error("libplist compiled a plist with an unescaped &: this test cannot tell a bad plist")
	}
}

// The directories install made are listed in each file it writes, in a
// line that survives any path, is a comment in a unit and in a plist, and
// that status does not count as a difference.
func TestMadeDirsRoundTrip(t *testing.T) {
	dirs := []string{"/home/a b/.config", `/home/"q"/x--y-`, "/home/é\n/z", `/back\slash`}
	p, plist := launchdAgent(t)
	unit := ServiceFiles("linux", "/home/a b", "/usr/bin/llmkey", p, "127.0.0.1:5565")[0].Content
	for _, content := range []string{unit, plist[0].Content} {
		with := withMade(content, dirs)
		got, rest := madeDirs(with)
		if !slices.Equal(got, dirs) || rest != content {
			t.Errorf("read back %q and\n%s\nfrom\n%s", got, rest, with)
		}
		if strings.HasPrefix(content, "<?xml") {
			start := strings.Index(with, "<!-- "+madeMark)
			comment := with[start+4 : start+strings.Index(with[start:], "-->")]
			if strings.Contains(comment, "--") || strings.Contains(comment, "\n") {
				t.Errorf("not one XML comment: %q", comment)
			}
			checkLaunchdFields(t, parsePlist(t, with), p)
		} else if !strings.HasPrefix(strings.Split(with, "\n")[1], "# "+madeMark) {
			t.Errorf("not a comment line after the mark:\n%s", with)
		}
		if withMade(content, nil) != content {
			t.Error("no directories made, yet a line was added")
		}
	}
}

// installable tells go run's build and a binary gone since it started from
// an installed one, including one under a directory that only looks like
// go's.
func TestInstallable(t *testing.T) {
	dir := t.TempDir()
	installed := filepath.Join(dir, "go-builder", "b1", "bin", "llmkey")
	if err := os.MkdirAll(filepath.Dir(installed), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(installed, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := installable(installed); err != nil {
		t.Errorf("%s: %v", installed, err)
	}
	for bin, want := range map[string]string{
		"/tmp/go-build1234567/b001/exe/llmkey":                       "go run's temporary build",
		"/var/folders/xy/abc/T/go-build99/b017/exe/llmkey":           "go run's temporary build",
		filepath.Join(dir, "gone", "llmkey"):                         "was removed or replaced",
		filepath.Join(dir, "go-builder", "b1", "exe", "llmkey-gone"): "was removed or replaced",
	} {
		err := installable(bin)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", bin, err, want)
		}
	}
}

// On a unit's command line "$" is doubled (ExecStart substitutes ${VAR},
// and $$ is a "$"), and "%" too; an Environment= value keeps its "$".
func TestUnitEscapesDollarsOnTheCommandLine(t *testing.T) {
	p := state.Paths{Keyfile: "/home/a/$x/keys.toml", StateDir: "/home/a/s%i", RuntimeDir: "/home/a/r"}
	unit := ServiceFiles("linux", "/home/a", "/opt/a $b ${c} %d/llmkey", p, "127.0.0.1:5565")[0].Content
	for _, want := range []string{
		"\nExecStart=\"/opt/a $$b $${c} %%d/llmkey\" daemon --wait\n",
		"\nEnvironment=LLMKEY_KEYFILE=/home/a/$x/keys.toml\n",
		"\nEnvironment=LLMKEY_STATE_DIR=/home/a/s%%i\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("no %q in\n%s", want, unit)
		}
	}
}

// A service file is not installed, installed as install writes it now
// (the line of directories it made does not count), or stale: there, but
// written for another binary, other paths or another port.
func TestServiceFileState(t *testing.T) {
	home := t.TempDir()
	p := state.Paths{Keyfile: home + "/keys.toml", StateDir: home + "/state", RuntimeDir: home + "/run"}
	f := ServiceFiles("linux", home, "/usr/bin/llmkey", p, "127.0.0.1:5565")[0]
	if got := serviceFileState(f); got != fileNotInstalled {
		t.Errorf("no file: %v", got)
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	for content, want := range map[string]fileState{
		f.Content: fileInstalled,
		withMade(f.Content, []string{home + "/.config"}):                fileInstalled,
		strings.Replace(f.Content, "/usr/bin/llmkey", "/opt/llmkey", 1): fileStale,
		"[Unit]\n": fileStale,
	} {
		if err := os.WriteFile(f.Path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := serviceFileState(f); got != want {
			t.Errorf("%q: %v, want %v", content, got, want)
		}
	}
}

// install --dry-run prints each file it would write and the commands that
// would enable them, and writes nothing.
func TestServiceInstallDryRunPrintsTheUnits(t *testing.T) {
	home, p := tempUser(t)
	s, out, errs := captured(t)
	if err := ServiceInstallCommand(context.Background(), ServiceInstallCommandInput{Paths: p, DryRun: true}, s); err != nil {
		t.Fatal(err)
	}
	here, err := serviceFilesHere(p)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, f := range here.files {
		fmt.Fprintf(&want, "# %s\n%s\n", f.Path, f.Content)
	}
	for _, c := range installCommands(runtime.GOOS, here.files) {
		want.WriteString(commandLine(c) + "\n")
	}
	if out.String() != want.String() || errs.Len() != 0 {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr: %q", out, want.String(), errs)
	}
	if !strings.Contains(out.String(), "Environment=LLMKEY_KEYFILE="+p.Keyfile) && runtime.GOOS == "linux" {
		t.Errorf("the unit does not pin the keyfile:\n%s", out)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("a dry run wrote into HOME: %v", entries)
	}
}

// status with nothing installed says so of each file, and asks the
// service manager nothing.
func TestServiceStatusWithNothingInstalled(t *testing.T) {
	_, p := tempUser(t)
	s, out, errs := captured(t)
	if err := ServiceStatusCommand(context.Background(), ServiceStatusCommandInput{Paths: p}, s); err != nil {
		t.Fatal(err)
	}
	here, _ := serviceFilesHere(p)
	var want strings.Builder
	for _, f := range here.files {
		want.WriteString(f.Path + ": not installed\n")
	}
	if out.String() != want.String() || errs.Len() != 0 {
		t.Errorf("stdout:\n%s\nwant:\n%s\nstderr: %q", out, want.String(), errs)
	}
}

// uninstall with nothing installed runs no command, removes nothing and
// says so; its dry run lists the files it would remove, and no command.
func TestServiceUninstallWithNothingInstalled(t *testing.T) {
	home, p := tempUser(t)
	s, out, errs := captured(t)
	if err := ServiceUninstallCommand(context.Background(), ServiceUninstallCommandInput{Paths: p}, s); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 || errs.String() != "the service was not installed; nothing to remove\n" {
		t.Errorf("stdout %q, stderr %q", out, errs)
	}

	s, out, errs = captured(t)
	if err := ServiceUninstallCommand(context.Background(), ServiceUninstallCommandInput{Paths: p, DryRun: true}, s); err != nil {
		t.Fatal(err)
	}
	here, _ := serviceFilesHere(p)
	for _, f := range here.files {
		if !strings.Contains(out.String(), "rm "+f.Path+"\n") {
			t.Errorf("the dry run does not list %s:\n%s", f.Path, out)
		}
	}
	if strings.Contains(out.String(), "systemctl") || strings.Contains(out.String(), "launchctl") || errs.Len() != 0 {
		t.Errorf("a command to disable what is not installed:\n%s\nstderr: %q", out, errs)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("uninstall made files in HOME: %v", entries)
	}
}

// The units a package installs are service install's, less what pins
// them to one user: /usr/bin/llmkey, no paths in the environment (the
// daemon takes the defaults), the control socket in the user manager's
// runtime dir (%t, the daemon's $XDG_RUNTIME_DIR), and a mark that is
// not install's, so that install and uninstall never take them for the
// user's.
func TestPackagedUnitsAreInstallsForEveryUser(t *testing.T) {
	p := state.Paths{Keyfile: "/home/a/.config/llmkey/keys.toml", StateDir: "/home/a/.local/state/llmkey", RuntimeDir: "/run/user/1000/llmkey"}
	own := ServiceFiles("linux", "/home/a", "/usr/bin/llmkey", p, state.DefaultListen)
	packaged := PackagedUnits()
	if len(packaged) != len(own) {
		t.Fatalf("%d packaged units, %d of install's", len(packaged), len(own))
	}
	for i, f := range packaged {
		if want := "/usr/lib/systemd/user/" + filepath.Base(own[i].Path); f.Path != want {
			t.Errorf("packaged unit at %s, want %s", f.Path, want)
		}
		if strings.Contains(f.Content, serviceMark) || strings.Contains(f.Content, "Environment=") || strings.Contains(f.Content, "/home/") {
			t.Errorf("%s holds install's mark or a user's paths:\n%s", f.Path, f.Content)
		}
		var ownLines []string
		for _, l := range strings.Split(own[i].Content, "\n") {
			if !strings.HasPrefix(l, "Environment=") {
				ownLines = append(ownLines, l)
			}
		}
		mine := strings.Join(ownLines, "\n")
		mine = strings.Replace(mine, serviceMark, packagedMark, 1)
		mine = strings.Replace(mine, "ListenStream="+p.SocketPath(), "ListenStream=%t/llmkey/sock", 1)
		if mine != f.Content {
			t.Errorf("%s is not install's %s less the user's paths:\n%s\nwant:\n%s", f.Path, own[i].Path, f.Content, mine)
		}
	}
	if !strings.Contains(packaged[0].Content, "\nExecStart=/usr/bin/llmkey daemon --wait\n") {
		t.Errorf("the packaged service does not run /usr/bin/llmkey:\n%s", packaged[0].Content)
	}
}
