// SPDX-License-Identifier: MIT

package main

import (
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// service install writes a systemd user service and socket that
// systemd-analyze verify accepts, pointing at this llmkey and this user's
// paths; uninstall leaves nothing of what install wrote.
func TestServiceInstallAndUninstall(t *testing.T) {
	needTool(t, "systemd-analyze", "systemd")
	u := newUser(t)
	addr := freeAddr(t)
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \""+addr+"\"\n", 0o600)
	files := func() []string { return filesUnder(u.home) }
	before := files()

	if r := mustSucceed(t, u.llmkey("service", "install", "--dry-run")); !strings.Contains(r.stdout, "ListenStream="+addr) || !slices.Equal(files(), before) {
		t.Errorf("install --dry-run: %v", r)
	}
	r := mustSucceed(t, u.llmkey("service", "install"))
	dir := filepath.Join(u.home, ".config", "systemd", "user")
	service, socket := filepath.Join(dir, "llmkey.service"), filepath.Join(dir, "llmkey.socket")
	if !strings.Contains(r.stderr, "wrote "+service) || !strings.Contains(r.stderr, "enabled llmkey.socket, without a user manager") {
		t.Errorf("install: %v", r)
	}
	out, err := exec.Command("systemd-analyze", "verify", socket, service).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	unit := readFile(t, service) + readFile(t, socket)
	for _, want := range []string{
		"ExecStart=" + llmkeyBin + " daemon --wait\n",
		"Environment=LLMKEY_KEYFILE=" + u.keyfile(),
		"Environment=LLMKEY_STATE_DIR=" + u.stateDir(),
		"Environment=LLMKEY_RUNTIME_DIR=" + u.runtimeDir(),
		"ListenStream=" + addr,
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
	// No daemon has run: logs points at the journal the service logs to.
	if r := u.llmkey("logs"); r.code == 0 || !strings.Contains(r.stderr, "journalctl --user-unit llmkey.service") {
		t.Errorf("logs with the service installed and no daemon log: %v", r)
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
	// Such a keyfile stops neither status nor uninstall; doctor names
	// the units, which are for another port now.
	if r := mustSucceed(t, u.llmkey("service", "status")); !strings.Contains(r.stdout, "installed, but not as this llmkey would write it now") {
		t.Errorf("service status with listen :0: %v", r)
	}
	if r := u.llmkey("doctor"); !strings.Contains(r.stdout, socket+" was written for another llmkey binary, other paths or another port") {
		t.Errorf("doctor does not name the stale unit: %v", r)
	}
	mustSucceed(t, u.llmkey("service", "uninstall"))
	if after := files(); !slices.Equal(after, before) {
		t.Errorf("uninstall with listen :0 left behind what install wrote:\nbefore %v\nafter  %v", before, after)
	}
}

// Units go where systemd looks for the user's own, $XDG_CONFIG_HOME
// included: systemctl itself enables the socket from there (install has
// it do so with no user manager running, as here). Uninstall then leaves a home
// that had no config dir at all exactly as it was, the symlink systemctl
// made included, and keeps an empty config dir the user made before.
func TestServiceFollowsXDGConfigHomeAndUndoesItsDirs(t *testing.T) {
	needTool(t, "systemctl", "systemd")
	u := newUser(t)
	cfg := filepath.Join(u.home, "xdg cfg")
	u.env = append(u.env, "XDG_CONFIG_HOME="+cfg)
	// Not the default port, which another program (the user's own
	// llmkey) may hold: install refuses a port taken. The keyfile is
	// outside the config dir, which the home has none of.
	keyfile := filepath.Join(u.home, "keys.toml")
	writeFile(t, keyfile, "[daemon]\nlisten = \""+freeAddr(t)+"\"\n", 0o600)
	u.env = append(u.env, "LLMKEY_KEYFILE="+keyfile)
	files := func() []string { return filesUnder(u.home) }
	before := files()
	mustSucceed(t, u.llmkey("service", "install"))
	socket := filepath.Join(cfg, "systemd", "user", "llmkey.socket")
	readFile(t, socket)
	// No user manager here: install enabled the socket as systemctl does
	// without one, there, and status says so.
	wants := filepath.Join(cfg, "systemd", "user", "sockets.target.wants", "llmkey.socket")
	if _, err := os.Lstat(wants); err != nil {
		t.Fatalf("install did not enable the socket: %v", err)
	}
	if r := mustSucceed(t, u.llmkey("service", "status")); !strings.Contains(r.stdout, "llmkey.socket: enabled (it starts at your next login with a user manager)") || !strings.Contains(r.stdout, "cannot reach your user manager") {
		t.Errorf("service status after install: %v", r)
	}
	mustSucceed(t, u.llmkey("service", "install")) // again: still knows what the first made
	mustSucceed(t, u.llmkey("service", "uninstall"))
	if after := files(); !slices.Equal(after, before) {
		t.Errorf("uninstall left behind what install wrote:\nbefore %v\nafter  %v", before, after)
	}

	// The config dir of the user's own, there (empty) before install,
	// stays.
	if err := os.Mkdir(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, u.llmkey("service", "install"))
	mustSucceed(t, u.llmkey("service", "uninstall"))
	if fi, err := os.Stat(cfg); err != nil || !fi.IsDir() {
		t.Errorf("uninstall removed %s, which the user made: %v", cfg, err)
	}
	if _, err := os.Stat(filepath.Join(cfg, "systemd")); err == nil {
		t.Error("uninstall left the systemd directory install made")
	}
}

// filesUnder are the paths of everything below dir.
func filesUnder(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Paths that need escaping in a unit file come out as systemd reads
// them: systemd-analyze verify finds the binary behind the quotes a
// space needs and a "%" (it would not find it at a specifier's
// expansion), and the socket's path has its "%" doubled. What a unit
// cannot hold is refused, with what to do, and nothing written: a
// control character in a path, and a quote or a backslash in the
// binary's (systemd will not start such a program).
func TestServiceUnitsWithOddPaths(t *testing.T) {
	needTool(t, "systemd-analyze", "systemd")
	u := newUser(t)
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \""+freeAddr(t)+"\"\n", 0o600)
	b, err := os.ReadFile(llmkeyBin)
	if err != nil {
		t.Fatal(err)
	}
	copyAt := func(dir string) string {
		bin := filepath.Join(u.home, dir, "llmkey")
		if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, bin, string(b), 0o755)
		return bin
	}
	bin := copyAt("odd %h; & é dir")
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = append(append([]string{}, u.env...), env...), u.home
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	runtimeDir := filepath.Join(u.home, "run %t")
	if out, err := run([]string{"LLMKEY_RUNTIME_DIR=" + runtimeDir}, "service", "install"); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	dir := filepath.Join(u.home, ".config", "systemd", "user")
	service, socket := filepath.Join(dir, "llmkey.service"), filepath.Join(dir, "llmkey.socket")
	if out, err := exec.Command("systemd-analyze", "verify", socket, service).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, readFile(t, service))
	}
	if want := "ListenStream=" + strings.ReplaceAll(runtimeDir, "%", "%%") + "/sock\n"; !strings.Contains(readFile(t, socket), want) {
		t.Errorf("the socket unit has no %q:\n%s", want, readFile(t, socket))
	}
	if out, err := run(nil, "service", "uninstall"); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}

	before := filesUnder(u.home)
	out, err := run([]string{"LLMKEY_STATE_DIR=" + filepath.Join(u.home, "state\nx")}, "service", "install")
	if err == nil || !strings.Contains(out, "holds a control character") {
		t.Errorf("install with a newline in the state dir: %v\n%s", err, out)
	}
	if after := filesUnder(u.home); !slices.Equal(after, before) {
		t.Errorf("refused install wrote files: %v", after)
	}
	for _, dir := range []string{`a "q" b`, `back\slash`, "it's"} {
		bin = copyAt(dir)
		before = filesUnder(u.home)
		out, err := run(nil, "service", "install")
		if err == nil || !strings.Contains(out, "systemd will not start a program whose path holds a quote or a backslash") {
			t.Errorf("install from %s: %v\n%s", bin, err, out)
		}
		if after := filesUnder(u.home); !slices.Equal(after, before) {
			t.Errorf("refused install wrote files: %v", after)
		}
	}
}

// What stands where install would write, and is not a unit it wrote,
// stops it with the fix, and nothing is written: a file where the units'
// directory goes, and a directory where a unit goes.
func TestServiceInstallOverWhatIsNotAUnit(t *testing.T) {
	u := newUser(t)
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \""+freeAddr(t)+"\"\n", 0o600)
	dir := filepath.Join(u.home, ".config", "systemd", "user")
	writeFile(t, dir, "not a directory", 0o600)
	before := filesUnder(u.home)
	r := u.llmkey("service", "install")
	if r.code != 1 || !strings.Contains(r.stderr, "create "+dir) || !strings.Contains(r.stderr, "hint: make it a directory") {
		t.Errorf("install with a file for the units' directory: %v", r)
	}
	if after := filesUnder(u.home); !slices.Equal(after, before) {
		t.Errorf("refused install wrote files: %v", after)
	}
	os.Remove(dir)
	if err := os.MkdirAll(filepath.Join(dir, "llmkey.service"), 0o700); err != nil {
		t.Fatal(err)
	}
	before = filesUnder(u.home)
	r = u.llmkey("service", "install")
	if r.code != 1 || !strings.Contains(r.stderr, "llmkey.service exists and is not a file") || !strings.Contains(r.stderr, "hint: move it away") {
		t.Errorf("install with a directory for the unit: %v", r)
	}
	if after := filesUnder(u.home); !slices.Equal(after, before) {
		t.Errorf("refused install wrote files: %v", after)
	}
}

// A unit for the binary go run built would start nothing once go run
// exits and removes it: install refuses it, says what to do, and writes
// nothing. The same binary elsewhere installs.
func TestServiceInstallRefusesGoRunsBuild(t *testing.T) {
	u := newUser(t)
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \""+freeAddr(t)+"\"\n", 0o600)
	bin := filepath.Join(u.home, "tmp", "go-build2913", "b001", "exe", "llmkey")
	if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(llmkeyBin)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bin, string(b), 0o755)
	before := filesUnder(u.home)
	for _, args := range [][]string{{"service", "install"}, {"service", "install", "--dry-run"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = u.env, u.home
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "go run's temporary build") || !strings.Contains(string(out), "go install github.com/llmkey/llmkey@latest") {
			t.Errorf("%v from go run's build: %v\n%s", args, err, out)
		}
		if strings.Contains(string(out), "ExecStart") {
			t.Errorf("%v from go run's build printed a unit:\n%s", args, out)
		}
	}
	if after := filesUnder(u.home); !slices.Equal(after, before) {
		t.Errorf("refused install wrote files: %v", after)
	}
	mustSucceed(t, u.llmkey("service", "install"))
	mustSucceed(t, u.llmkey("service", "uninstall"))
}

// A daemon llmkey started holds the port and socket the service takes:
// install stops it first where it can start the service, and where it
// cannot (no user manager, as here) it says to stop it before the login
// that starts the service. The daemon keeps serving until then.
func TestServiceInstallWithADaemonRunning(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	// A fixed port, as a socket unit needs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), "127.0.0.1:0", ln.Addr().String(), 1), 0o600)
	mustSucceed(t, u.llmkey("start"))
	pid := u.daemonPID()
	if st, _ := u.status(); st["spawned"] != true {
		t.Errorf("status of a daemon llmkey started: %v", st)
	}
	r := mustSucceed(t, u.llmkey("service", "install"))
	if !strings.Contains(r.stderr, "the daemon llmkey started serves; stop it (llmkey stop) before that login") || strings.Contains(r.stderr, "systemctl --user") {
		t.Errorf("install with a daemon running does not say to stop it before the service can start: %v", r)
	}
	if u.daemonPID() != pid {
		t.Error("install stopped the daemon though the service cannot start now")
	}
	// doctor agrees: nothing to do here that could work here.
	if r := u.llmkey("doctor"); strings.Contains(r.stdout, "systemctl --user") || strings.Contains(r.stdout, "is one llmkey started, not the service's") {
		t.Errorf("doctor with the service installed without a user manager: %v", r)
	}
	mustSucceed(t, u.llmkey("service", "uninstall"))
	mustSucceed(t, u.llmkey("stop"))
}

// The service's daemon (--wait, as the unit and the agent run it) never
// fights one llmkey started: it waits while that one serves, takes over
// when it exits (and stop, seeing another pid hold the lock, returns at
// once), and a SIGTERM while it waits ends it with 0. Without --wait it
// would exit 1, which launchd's KeepAlive restarts every ten seconds.
func TestServiceDaemonWaitsForTheOneRunning(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	mustSucceed(t, u.llmkey("start"))
	spawned := u.daemonPID()

	wait := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(llmkeyBin, "daemon", "--wait")
		cmd.Env = u.env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); <-done })
		return cmd, done
	}
	cmd, done := wait()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("daemon --wait exited while another daemon runs: %v", err)
	default:
	}
	if st, _ := u.status(); int(st["pid"].(float64)) != spawned {
		t.Fatalf("the daemon llmkey started no longer serves: %v", st)
	}

	start := time.Now()
	mustSucceed(t, u.llmkey("stop"))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop waited %v for a lock the waiting daemon took", d)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, code := u.status(); code == 0 && int(st["pid"].(float64)) == cmd.Process.Pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon --wait did not take over")
		}
	}
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	if p := u.daemonPID(); p != cmd.Process.Pid {
		t.Errorf("exec started another daemon (pid %d)", p)
	}

	// Stopped while it waits: exit 0, and the serving daemon serves on.
	waiting, waited := wait()
	time.Sleep(300 * time.Millisecond)
	waiting.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("daemon --wait stopped while waiting: %v, want exit 0", err)
		}
		waited <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("daemon --wait did not end on SIGTERM while waiting")
	}
	if p := u.daemonPID(); p != cmd.Process.Pid {
		t.Errorf("the serving daemon is pid %d, want %d", p, cmd.Process.Pid)
	}
	select {
	case err := <-done:
		t.Fatalf("the daemon that took over exited: %v", err)
	default:
	}
}

// Without a user manager (over ssh, in a container: as here) install
// enables what it can and says plainly that the service starts at the
// next login, prescribing no command that needs the manager; service
// status and doctor say the same. With no systemctl at all nothing can be
// enabled: install exits 1, and doctor says the service cannot run here.
func TestServiceInstallWithoutAUserManager(t *testing.T) {
	needTool(t, "systemctl", "systemd")
	u := newUser(t)
	writeFile(t, u.keyfile(), "[daemon]\nlisten = \""+freeAddr(t)+"\"\n", 0o600)
	if out, err := exec.Command("systemctl", "--user", "show-environment").CombinedOutput(); err == nil {
		t.Skipf("a user manager runs here: %s", out)
	}
	r := mustSucceed(t, u.llmkey("service", "install"))
	if !strings.Contains(r.stderr, "enabled llmkey.socket, without a user manager") || !strings.Contains(r.stderr, "at your next login") ||
		strings.Contains(r.stderr, "systemctl --user") || strings.Contains(r.stderr, "could not reach") {
		t.Errorf("install without a user manager: %v", r)
	}
	if r := mustSucceed(t, u.llmkey("service", "status")); !strings.Contains(r.stdout, "llmkey.socket: enabled (it starts at your next login") {
		t.Errorf("service status: %v", r)
	}
	if r := u.llmkey("doctor"); strings.Contains(r.stdout, "llmkey.socket") || strings.Contains(r.stdout, "systemctl --user") {
		t.Errorf("doctor after install: %v", r)
	}
	r = mustSucceed(t, u.llmkey("service", "uninstall"))
	if strings.Contains(r.stderr, "systemctl --user") || !strings.Contains(r.stderr, "disabled llmkey.socket") {
		t.Errorf("uninstall without a user manager: %v", r)
	}

	// No systemctl: the units are written, nothing enables them.
	bin := filepath.Join(u.home, "bin")
	os.Mkdir(bin, 0o755)
	noSystemd := []string{"PATH=" + bin}
	r = u.run(nil, noSystemd, "service", "install")
	if r.code != 1 || !strings.Contains(r.stderr, "nothing here can enable them: systemctl is not installed") || strings.Contains(r.stderr, "systemctl --user") {
		t.Errorf("install without systemctl: %v", r)
	}
	if r := u.run(nil, noSystemd, "doctor"); !strings.Contains(r.stdout, "nothing here can run it: systemctl is not installed") {
		t.Errorf("doctor without systemctl: %v", r)
	}
	mustSucceed(t, u.run(nil, noSystemd, "service", "uninstall"))
}
