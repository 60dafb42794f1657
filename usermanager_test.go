// SPDX-License-Identifier: MIT

package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// userManager starts systemd's own user manager (systemd --user, from
// Debian's systemd) for a second local user, whom the test creates, and
// returns that user, with llmkey to run as them, and systemctl --user for
// them. Why a second user: a user manager run as root takes the
// machine's cgroups for its own and moves every process on the machine
// into its init.scope (seen here). As logind does at login, the test
// hands the user a cgroup of their own to manage (delegation). systemd
// starts a user manager only on a machine booted with it, which it tells
// by /run/systemd/system: CI's machine is a container whose init is not
// systemd, so the test makes that directory where it is missing. All of
// it (the user, the cgroups, the directory) is removed after.
func userManager(t *testing.T, setup func(u *user)) (*user, func(args ...string) (string, error)) {
	t.Helper()
	const manager = "/usr/lib/systemd/systemd"
	if _, err := os.Stat(manager); err != nil {
		t.Fatal("systemd is needed (apt-get install systemd; .ci/run installs it)")
	}
	needTool(t, "setpriv", "util-linux")
	o := newOtherUser(t)
	// Whatever of the user's is left when the test ends (a daemon a
	// failing step started outside the manager) goes before the user
	// does: userdel refuses a user with processes.
	t.Cleanup(func() { killProcessesOf(o.uid) })
	cred := &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
	home, err := os.MkdirTemp("", "lk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	rt := filepath.Join(home, "rt")
	for _, d := range []string{rt, filepath.Join(home, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// llmkey where the user may run it: beside their copy of the test
	// binary, in a directory anyone may enter.
	bin := filepath.Join(filepath.Dir(o.bin), "llmkey")
	b, err := os.ReadFile(llmkeyBin)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bin, string(b), 0o755)
	u := &user{t: t, home: home, bin: bin, cred: cred, env: []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + filepath.Join(home, "tmp"), "LANG=C.UTF-8",
		"GORACE=atexit_sleep_ms=0", "XDG_RUNTIME_DIR=" + rt,
	}}
	setup(u)
	// The services' output goes to the manager's, which the test reads:
	// there is no journal here.
	writeFile(t, filepath.Join(home, ".config", "systemd", "user.conf"), "[Manager]\nDefaultStandardOutput=inherit\nDefaultStandardError=inherit\n", 0o644)
	chownTree(t, home, o.uid, o.gid)

	if _, err := os.Stat("/run/systemd/system"); err != nil {
		made := missingDirsOf("/run/systemd/system")
		if err := os.MkdirAll("/run/systemd/system", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeDirs(made) })
	}
	// The cgroup to delegate: in the unified hierarchy, and in a hybrid
	// layout (as here) in systemd's named v1 hierarchy too.
	var cgroups []string
	name := "llmkey-test-" + o.name
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroups = []string{"/sys/fs/cgroup/" + name}
	} else {
		for _, h := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"} {
			if _, err := os.Stat(h); err == nil {
				cgroups = append(cgroups, filepath.Join(h, name))
			}
		}
	}
	if len(cgroups) == 0 {
		t.Fatal("no cgroup hierarchy to delegate to the user manager under /sys/fs/cgroup")
	}
	for _, cg := range cgroups {
		if err := os.Mkdir(cg, 0o755); err != nil {
			t.Fatal(err)
		}
		chownTree(t, cg, o.uid, o.gid)
	}
	t.Cleanup(func() {
		for _, cg := range cgroups {
			removeCgroup(t, cg)
		}
	})

	// The shell moves itself into the cgroups as root, then becomes the
	// user's manager.
	script := fmt.Sprintf(`for d; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec setpriv --reuid=%d --regid=%d --clear-groups %s --user`, o.uid, o.gid, manager)
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, cgroups...)...)
	cmd.Env = u.env
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // the manager stops its units, then exits
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		// The daemons' log went to the manager's standard error: no
		// secret, no local token, no race in it.
		u.assertNoCanary(log.String())
		if tok, err := os.ReadFile(filepath.Join(u.stateDir(), "token")); err == nil && len(tok) > 0 && strings.Contains(log.String(), strings.TrimSpace(string(tok))) {
			t.Error("the daemon's log holds the local token")
		}
		if strings.Contains(log.String(), "WARNING: DATA RACE") {
			t.Errorf("a daemon reported a data race:\n%s", log.String())
		}
	})
	systemctl := func(args ...string) (string, error) {
		c := exec.Command("systemctl", append([]string{"--user"}, args...)...)
		c.Env = u.env
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := c.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, _ := systemctl("is-system-running")
		if out == "running" || out == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user manager did not come up: %s\n%s", out, log.String())
		}
	}
	return u, systemctl
}

// processes are the pids in /proc that match.
func processes(match func(pid int) bool) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && match(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killProcessesOf kills every process of uid, and waits a moment for them
// to be gone.
func killProcessesOf(uid int) {
	ofUID := func(pid int) bool {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
				return f[1] == strconv.Itoa(uid)
			}
		}
		return false
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		left := processes(ofUID)
		if len(left) == 0 {
			return
		}
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// chownTree gives dir and all under it to uid and gid.
func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// removeCgroup removes a cgroup and those under it, the deepest first,
// killing what is left in them.
func removeCgroup(t *testing.T, cg string) {
	var dirs []string
	filepath.WalkDir(cg, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left := 0
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
				left++
				procs, _ := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs"))
				for _, f := range strings.Fields(string(procs)) {
					if pid, _ := strconv.Atoi(f); pid > 0 {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("could not remove the cgroup %s", cg)
			return
		}
	}
}

// missingDirsOf are dir and those of its parents that do not exist, the
// outermost first.
func missingDirsOf(dir string) []string {
	var out []string
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Lstat(dir); err == nil {
			break
		}
		out = append([]string{dir}, out...)
	}
	return out
}

// removeDirs removes dirs, the innermost first.
func removeDirs(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
}

// chatOnce sends one chat request ("BASE TOKEN") through the proxy and
// prints the status and the body: a request as another user than the
// test's, run from that user's copy of the test binary.
func chatOnce(spec string) {
	base, token, _ := strings.Cut(spec, " ")
	req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(b))
}

// waitUnit waits for the user manager to see unit in state want: it
// hears of a process's exit a moment after the CLI does.
func waitUnit(t *testing.T, systemctl func(...string) (string, error), unit, want, when string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, _ := systemctl("is-active", unit)
		if out == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s, %s is %q, not %q", when, unit, out, want)
		}
	}
}

// The service as a user has it, under systemd's real user manager:
// install writes the units, reloads the manager and enables the socket;
// the first request through the port starts the daemon and is served;
// CLI calls after it, and after a stop, a restart or a kill -9, find the
// daemon systemd runs and never start another. install again restarts
// nothing when nothing changed, and when llmkey moved or the port did,
// puts the new unit in effect. uninstall disables and stops both units,
// frees the port and leaves the config dir as it was; with nothing
// installed it does nothing, and a llmkey.socket of the user's own it
// neither stops nor removes.
func TestServiceUnderTheUserManager(t *testing.T) {
	fake := newFakeProvider(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The token, as a daemon would have made it before: the first request
	// through the port must carry one.
	token := "llmk-local-" + strings.Repeat("cd", 24)
	u, systemctl := userManager(t, func(u *user) {
		u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
		writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), "127.0.0.1:0", addr, 1), 0o600)
		if err := os.MkdirAll(u.stateDir(), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(u.stateDir(), "token"), token+"\n", 0o600)
	})
	configBefore := filesUnder(filepath.Join(u.home, ".config"))
	daemons := func() []int {
		return processes(func(pid int) bool {
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			return exe == u.bin && slices.Contains(strings.Split(string(cmdline), "\x00"), "daemon")
		})
	}
	// A request as the user: llmkey refuses other users' connections.
	helper := filepath.Join(filepath.Dir(u.bin), "llmkey.test")
	asUser := func(base string) string {
		o := exec.Command(helper, "-test.run=XXX")
		o.Env = []string{"LLMKEY_CHAT_ONCE=" + base + " " + token}
		o.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
		out, _ := o.CombinedOutput()
		return string(out)
	}

	// The port taken by another program: install says so, and writes
	// nothing.
	taken, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if r := u.llmkey("service", "install"); r.code != 1 || !strings.Contains(r.stderr, addr+" is taken by another program") || !strings.Contains(r.stderr, "hint: set [daemon] listen in") {
		t.Errorf("install with the port taken: %v", r)
	}
	taken.Close()
	if after := filesUnder(filepath.Join(u.home, ".config")); !slices.Equal(after, configBefore) {
		t.Errorf("install with the port taken wrote files: %v", after)
	}

	// A daemon llmkey started holds the port and the socket: install
	// stops it (it drains) before the socket takes them.
	mustSucceed(t, u.llmkey("start"))
	spawned := daemons()
	if len(spawned) != 1 {
		t.Fatalf("start: daemons %v", spawned)
	}
	r := mustSucceed(t, u.llmkey("service", "install"))
	if strings.Contains(r.stderr, "could not reach") || !strings.Contains(r.stderr, "enabled llmkey.socket: it listens now") {
		t.Fatalf("install did not reach the user manager, or did not say it enabled the socket: %v", r)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("stopping the daemon llmkey started (pid %d)", spawned[0])) {
		t.Errorf("install with a daemon llmkey started: %v", r)
	}
	for unit, want := range map[string]string{"is-enabled llmkey.socket": "enabled", "is-active llmkey.socket": "active", "is-active llmkey.service": "inactive"} {
		if out, _ := systemctl(strings.Fields(unit)...); out != want {
			t.Fatalf("after install, %s: %q, want %q", unit, out, want)
		}
	}
	if pids := daemons(); len(pids) != 0 {
		t.Fatalf("install started daemons %v", pids)
	}
	mainPID := func() int {
		out, _ := systemctl("show", "--property", "MainPID", "--value", "llmkey.service")
		pid, _ := strconv.Atoi(out)
		return pid
	}
	// One daemon, the one systemd runs, serving, and status exits with
	// code (1: it has problems).
	serving := func(when string, want int) int {
		t.Helper()
		st, code := u.status()
		pid := mainPID()
		if code != want || pid == 0 || st["pid"] != float64(pid) || st["socket_activated"] != true {
			t.Fatalf("%s: status exit %d pid %v, systemd's MainPID %d: %v", when, code, st["pid"], pid, st)
		}
		if pids := daemons(); !slices.Equal(pids, []int{pid}) {
			t.Fatalf("%s: daemons %v run, systemd's is %d", when, pids, pid)
		}
		return pid
	}
	oneDaemon := func(when string) int { t.Helper(); return serving(when, 0) }

	if out := asUser("http://" + addr); !strings.HasPrefix(out, "200 ") || !strings.Contains(out, "hello") {
		t.Fatalf("the first request through the port: %s", out)
	}
	first := oneDaemon("after the first request")
	for _, args := range [][]string{{"exec", "--", "true"}, {"start"}, {"list"}, {"doctor"}} {
		mustSucceed(t, u.llmkey(args...))
		if pid := oneDaemon("after llmkey " + strings.Join(args, " ")); pid != first {
			t.Fatalf("llmkey %v: the daemon is pid %d, was %d", args, pid, first)
		}
	}
	if out := mustSucceed(t, u.llmkey("service", "status")).stdout; !strings.Contains(out, "llmkey.socket: enabled") || !strings.Contains(out, "now: llmkey.socket active, llmkey.service active") {
		t.Errorf("service status:\n%s", out)
	}

	// install again, unchanged: nothing restarts.
	if r := mustSucceed(t, u.llmkey("service", "install")); strings.Contains(r.stderr, "restarted") || strings.Contains(r.stderr, "warning") {
		t.Errorf("install again: %v", r)
	}
	if pid := oneDaemon("after install again"); pid != first {
		t.Fatalf("install again restarted the daemon: pid %d, was %d", pid, first)
	}
	// llmkey moved (installed elsewhere, as after an upgrade to another
	// GOBIN), and install run from there: the new unit takes effect, and
	// the next request is served by the new binary.
	moved := filepath.Join(filepath.Dir(u.bin), "moved", "llmkey")
	if err := os.Mkdir(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, moved, readFile(t, u.bin), 0o755)
	u.bin = moved
	if r := mustSucceed(t, u.llmkey("service", "install")); !strings.Contains(r.stderr, "restarted llmkey.socket") || strings.Contains(r.stderr, "warning") {
		t.Errorf("install from the moved llmkey: %v", r)
	}
	if out := asUser("http://" + addr); !strings.HasPrefix(out, "200 ") {
		t.Fatalf("the first request after install from the moved llmkey: %s", out)
	}
	first = oneDaemon("after install from the moved llmkey") // daemons() counts only u.bin's

	// A new port in the keyfile: the daemon says to run install, which
	// moves the socket there.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	oldAddr := addr
	addr = ln.Addr().String()
	ln.Close()
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), oldAddr, addr, 1), 0o600)
	if r := mustSucceed(t, u.llmkey("service", "install")); !strings.Contains(r.stderr, "restarted llmkey.socket") || strings.Contains(r.stderr, "warning") {
		t.Errorf("install after the port changed: %v", r)
	}
	if out := asUser("http://" + addr); !strings.HasPrefix(out, "200 ") {
		t.Fatalf("the first request on the new port: %s", out)
	}
	if c, err := net.Dial("tcp", oldAddr); err == nil {
		c.Close()
		t.Errorf("the old port %s still takes connections", oldAddr)
	}
	if st, _ := u.status(); st["proxy_url"] != "http://"+addr {
		t.Errorf("status after the port changed: %v", st["proxy_url"])
	}
	first = oneDaemon("after the port changed")

	// stop: the service stops and its socket stays; the next call starts
	// the daemon again, under systemd.
	if r := mustSucceed(t, u.llmkey("stop")); !strings.Contains(r.stderr, "its socket still listens") {
		t.Errorf("stop of the service's daemon: %v", r)
	}
	waitUnit(t, systemctl, "llmkey.service", "inactive", "after stop")
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	second := oneDaemon("after stop and exec")

	// The socket stopped by hand, a command then starts a daemon of its
	// own, which holds the port: doctor says so, and its fix brings the
	// service back.
	if out, err := systemctl("stop", "llmkey.socket"); err != nil {
		t.Fatalf("stop llmkey.socket: %v: %s", err, out)
	}
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	if st, _ := u.status(); st["spawned"] != true {
		t.Fatalf("with the socket stopped, exec did not start a daemon: %v", st)
	}
	if r := u.llmkey("doctor"); r.code != 1 || !strings.Contains(r.stdout, "is one llmkey started, not the service's") || !strings.Contains(r.stdout, "fix: llmkey stop, then systemctl --user enable --now llmkey.socket") {
		t.Errorf("doctor with the service's port held by a daemon llmkey started: %v", r)
	}
	mustSucceed(t, u.llmkey("stop"))
	if out, err := systemctl("enable", "--now", "llmkey.socket"); err != nil {
		t.Fatalf("enable --now llmkey.socket: %v: %s", err, out)
	}
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	second = oneDaemon("after doctor's fix")
	if r := mustSucceed(t, u.llmkey("doctor")); !strings.Contains(r.stdout, "no problems found") {
		t.Errorf("doctor after its fix: %v", r)
	}

	// restart: systemd's daemon again, nothing else.
	if r := mustSucceed(t, u.llmkey("restart")); !strings.Contains(r.stderr, "daemon restarted (pid") || !strings.Contains(r.stderr, "started by its socket") {
		t.Errorf("restart: %v", r)
	}
	third := oneDaemon("after restart")
	if third == second {
		t.Fatal("restart did not restart the daemon")
	}

	// kill -9: systemd restarts it, or its socket does at the next
	// request; either way no CLI starts one of its own.
	syscall.Kill(third, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); mainPID() == third; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("systemd never saw the daemon die")
		}
	}
	if out := asUser("http://" + addr); !strings.HasPrefix(out, "200 ") {
		t.Fatalf("the first request after kill -9: %s", out)
	}
	if pid := oneDaemon("after kill -9"); pid == third {
		t.Fatal("the killed daemon still counts")
	}

	// The runtime dir removed under the service's daemon: the daemon puts
	// a control socket back, and says that the socket unit's is gone.
	// Once it stops, a command wakes the next one through the port (no
	// CLI can reach the unit's control socket, nor start a daemon on its
	// port), until the socket unit is restarted.
	const gone = "the control socket that llmkey.socket holds was removed"
	if err := os.RemoveAll(filepath.Join(u.home, "rt", "llmkey")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, code := u.status(); code == 1 && slices.ContainsFunc(st["problems"].([]any), func(p any) bool { return strings.Contains(p.(string), gone) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("status never said the socket unit's control socket was gone")
		}
	}
	for range 2 {
		mustSucceed(t, u.llmkey("stop"))
		if r := mustSucceed(t, u.llmkey("exec", "--", "true")); !strings.Contains(r.stderr, gone) {
			t.Errorf("exec with the socket unit's control socket gone does not say so: %v", r)
		}
		serving("after the runtime dir was removed, a stop and an exec", 1)
	}
	if out, err := systemctl("restart", "llmkey.socket"); err != nil {
		t.Fatalf("restart llmkey.socket: %v: %s", err, out)
	}
	mustSucceed(t, u.llmkey("exec", "--", "true"))
	oneDaemon("after the socket unit's restart")
	if st, code := u.status(); code != 0 {
		t.Errorf("status after the socket unit's restart: exit %d %v", code, st["problems"])
	}

	if r := mustSucceed(t, u.llmkey("service", "uninstall")); !strings.Contains(r.stderr, "stopped and disabled llmkey.socket and llmkey.service") || strings.Contains(r.stderr, "warning") {
		t.Errorf("uninstall: %v", r)
	}
	for _, unit := range []string{"llmkey.socket", "llmkey.service"} {
		waitUnit(t, systemctl, unit, "inactive", "after uninstall")
	}
	if out, _ := systemctl("is-enabled", "llmkey.socket"); out == "enabled" {
		t.Errorf("after uninstall, llmkey.socket is %q", out)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("after uninstall, %s still takes connections", addr)
	}
	if pids := daemons(); len(pids) != 0 {
		t.Errorf("after uninstall, daemons %v run", pids)
	}
	if after := filesUnder(filepath.Join(u.home, ".config")); !slices.Equal(after, configBefore) {
		t.Errorf("uninstall left the config dir as\n%v\nnot\n%v", after, configBefore)
	}
	// Again, with nothing installed: nothing to do, no warning, and a unit
	// of that name that llmkey did not write is neither stopped nor
	// removed.
	if r := mustSucceed(t, u.llmkey("service", "uninstall")); !strings.Contains(r.stderr, "nothing to remove") || strings.Contains(r.stderr, "warning") {
		t.Errorf("uninstall with nothing installed: %v", r)
	}
	own := filepath.Join(u.home, ".config", "systemd", "user", "llmkey.socket")
	if err := os.MkdirAll(filepath.Dir(own), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, own, "[Socket]\nListenStream="+addr+"\n", 0o644) // the port uninstall freed
	writeFile(t, filepath.Join(filepath.Dir(own), "llmkey.service"), "[Service]\nExecStart=/bin/sleep 1000\n", 0o644)
	chownTree(t, filepath.Join(u.home, ".config"), int(u.cred.Uid), int(u.cred.Gid))
	systemctl("daemon-reload")
	if out, err := systemctl("start", "llmkey.socket"); err != nil {
		t.Fatalf("start the user's own llmkey.socket: %v: %s", err, out)
	}
	if r := mustSucceed(t, u.llmkey("service", "uninstall")); !strings.Contains(r.stderr, "was not written by llmkey; left as it is") || strings.Contains(r.stderr, "stopped and disabled") {
		t.Errorf("uninstall with the user's own llmkey.socket: %v", r)
	}
	if out, _ := systemctl("is-active", "llmkey.socket"); out != "active" {
		t.Errorf("uninstall stopped the user's own llmkey.socket: %q", out)
	}
	if _, err := os.Stat(own); err != nil {
		t.Errorf("uninstall removed the user's own llmkey.socket: %v", err)
	}
}
