package main

import (
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// service install writes a systemd user service and socket that
// systemd-analyze verify accepts, pointing at this llmkey and this user's
// paths; uninstall leaves nothing of what install wrote.
func TestServiceInstallAndUninstall(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is needed (apt-get install systemd; .ci/run installs it)")
	}
	u := newUser(t)
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \"127.0.0.1:5599\"\n", 0o600)
	files := func() []string {
		var out []string
		filepath.WalkDir(u.home, func(p string, d fs.DirEntry, err error) error {
			if err == nil && p != u.home {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	before := files()

	if r := mustSucceed(t, u.llmkey("service", "install", "--dry-run")); !strings.Contains(r.stdout, "ListenStream=127.0.0.1:5599") || !slices.Equal(files(), before) {
		t.Errorf("install --dry-run: %v", r)
	}
	r := mustSucceed(t, u.llmkey("service", "install"))
	dir := filepath.Join(u.home, ".config", "systemd", "user")
	service, socket := filepath.Join(dir, "llmkey.service"), filepath.Join(dir, "llmkey.socket")
	if !strings.Contains(r.stderr, "wrote "+service) || !strings.Contains(r.stderr, "systemctl --user enable --now llmkey.socket") {
		t.Errorf("install: %v", r)
	}
	out, err := exec.Command("systemd-analyze", "verify", socket, service).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	unit := readFile(t, service) + readFile(t, socket)
	for _, want := range []string{
		"ExecStart=" + llmkeyBin + " daemon",
		"Environment=LLMKEY_KEYFILE=" + u.keyfile(),
		"Environment=LLMKEY_STATE_DIR=" + u.stateDir(),
		"Environment=LLMKEY_RUNTIME_DIR=" + u.runtimeDir(),
		"ListenStream=127.0.0.1:5599",
		"ListenStream=" + filepath.Join(u.runtimeDir(), "sock"),
		"SocketMode=0600",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the units lack %q:\n%s", want, unit)
		}
	}
	if r := mustSucceed(t, u.llmkey("service", "status")); strings.Count(r.stdout, ": installed\n") != 2 {
		t.Errorf("service status: %v", r)
	}
	// A file of the user's own is never overwritten nor removed.
	writeFile(t, service, "[Service]\nExecStart=/bin/true\n", 0o644)
	if r := u.llmkey("service", "install"); r.code == 0 || !strings.Contains(r.stderr, "not written by llmkey") {
		t.Errorf("install over the user's own unit: %v", r)
	}
	if r := mustSucceed(t, u.llmkey("service", "uninstall")); !strings.Contains(r.stderr, "left as it is") {
		t.Errorf("uninstall with the user's own unit: %v", r)
	}
	if readFile(t, service) != "[Service]\nExecStart=/bin/true\n" {
		t.Error("uninstall touched the user's own unit")
	}
	mustSucceed(t, u.llmkey("service", "install", "--dry-run"))
	exec.Command("rm", service).Run()
	mustSucceed(t, u.llmkey("service", "install"))
	mustSucceed(t, u.llmkey("service", "uninstall"))
	if after := files(); !slices.Equal(after, before) {
		t.Errorf("uninstall left behind what install wrote:\nbefore %v\nafter  %v", before, after)
	}
	if r := u.llmkey("service", "install"); r.code != 0 {
		t.Fatal(r)
	}
	// A port picked at each start cannot be a socket's.
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \"127.0.0.1:0\"\n", 0o600)
	if r := u.llmkey("service", "install"); r.code == 0 || !strings.Contains(r.stderr, "fixed loopback port") {
		t.Errorf("install with listen :0: %v", r)
	}
}
