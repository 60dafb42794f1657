// SPDX-License-Identifier: MIT

package main

// The tests in this package run the built llmkey binary as a user would:
// a fresh temporary HOME, no XDG variables, only the environment a shell
// would give. Every run's output is checked for the canary secrets the
// test planted.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var llmkeyBin string

func TestMain(m *testing.M) {
	if os.Getenv("LLMKEY_SDK_HELPER") == "1" { // run as a user's program; see TestSDKHelper
		os.Exit(m.Run())
	}
	if hold := os.Getenv("LLMKEY_HOLD_CONNS"); hold != "" { // another user's idle connections; see TestOtherUsersConnectionsAreRefused
		holdConns(hold)
		return
	}
	if spec := os.Getenv("LLMKEY_CHAT_ONCE"); spec != "" { // a request as the user the test runs; see TestServiceUnderTheUserManager
		chatOnce(spec)
		return
	}
	if sock := os.Getenv("LLMKEY_PLANTED_DAEMON"); sock != "" { // another user's fake daemon; see TestPlantedDaemonGetsNoTraffic
		runPlantedDaemon(sock)
		return
	}
	if up := os.Getenv("LLMKEY_BARE_PROXY"); up != "" { // the harness's reference proxy
		runBareProxy(up)
		return
	}
	dir, err := os.MkdirTemp("", "llmkey-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	llmkeyBin = filepath.Join(dir, "llmkey")
	args := []string{"build", "-o", llmkeyBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build llmkey: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// user is one person with a fresh home directory.
type user struct {
	t        testing.TB
	home     string
	env      []string
	canaries []string
	bin      string              // the llmkey it runs, when not llmkeyBin
	cred     *syscall.Credential // whom it runs as, when not this process's user
}

func newUser(t testing.TB) *user {
	t.Helper()
	// Short, because the daemon's socket lives under it and a UNIX socket
	// path may not exceed 107 bytes.
	home, err := os.MkdirTemp("", "lk")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(home, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	u := &user{t: t, home: home, env: []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp, "LANG=C.UTF-8",
		// The race runtime sleeps a second at every exit by default.
		"GORACE=atexit_sleep_ms=0",
	}}
	t.Cleanup(func() {
		u.stopDaemon()
		u.checkDaemonLog()
		os.RemoveAll(home)
	})
	return u
}

// runtimeDir is where the daemon's socket is without XDG_RUNTIME_DIR: in
// the home, never in the shared TMPDIR.
func (u *user) runtimeDir() string { return filepath.Join(u.home, ".cache", "llmkey", "run") }
func (u *user) stateDir() string   { return filepath.Join(u.home, ".local", "state", "llmkey") }

// daemonPID is the pid of the daemon holding this user's lock, or 0.
func (u *user) daemonPID() int {
	f, err := os.OpenFile(filepath.Join(u.runtimeDir(), "daemon.lock"), os.O_RDWR, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		return 0 // nobody holds it
	}
	b, _ := os.ReadFile(f.Name())
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stopDaemon leaves no daemon behind: stop, then SIGKILL if it lingers.
func (u *user) stopDaemon() {
	if u.daemonPID() == 0 {
		return
	}
	cmd := exec.Command(llmkeyBin, "stop")
	cmd.Env = u.env
	done := make(chan struct{})
	go func() { cmd.Run(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
	}
	if pid := u.daemonPID(); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// checkDaemonLog fails the test if the daemon logged a secret or the
// local token.
func (u *user) checkDaemonLog() {
	data, err := os.ReadFile(filepath.Join(u.stateDir(), "daemon.log"))
	if err != nil {
		return
	}
	u.assertNoCanary(string(data))
	if strings.Contains(string(data), "WARNING: DATA RACE") {
		u.errorf("the daemon reported a data race:\n%s", data)
	}
	if tok, err := os.ReadFile(filepath.Join(u.stateDir(), "token")); err == nil && len(tok) > 0 {
		if strings.Contains(string(data), strings.TrimSpace(string(tok))) {
			u.t.Error("the daemon log holds the local token")
		}
	}
}

// canary makes a secret that must never appear in any output.
func (u *user) canary(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	s := prefix + "CANARY" + hex.EncodeToString(b)
	u.canaries = append(u.canaries, s)
	return s
}

func (u *user) keyfile() string { return filepath.Join(u.home, ".config", "llmkey", "keys.toml") }

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs llmkey with stdin (nil: /dev/null) and extra environment.
func (u *user) run(stdin io.Reader, env []string, args ...string) result {
	u.t.Helper()
	bin := llmkeyBin
	if u.bin != "" {
		bin = u.bin
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append([]string{}, u.env...), env...)
	cmd.Dir = u.home
	if u.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	}
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatalf("run llmkey %v: %v", args, err)
	}
	u.assertNoCanary(r.stdout + r.stderr)
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		u.fatalf("llmkey %v reported a data race:\n%s", args, r.stderr)
	}
	return r
}

func (u *user) llmkey(args ...string) result {
	u.t.Helper()
	return u.run(nil, nil, args...)
}

func (u *user) pipe(stdin string, args ...string) result {
	u.t.Helper()
	return u.run(strings.NewReader(stdin), nil, args...)
}

func (u *user) assertNoCanary(s string) {
	u.t.Helper()
	for _, c := range u.canaries {
		if strings.Contains(s, c) {
			u.fatalf("a secret leaked into output (shown here as <canary>):\n%s", s)
		}
	}
}

// fatalf and errorf report failures with every canary redacted: a secret
// must not reach test output either.
func (u *user) fatalf(format string, args ...any) {
	u.t.Helper()
	u.t.Fatal(u.redact(fmt.Sprintf(format, args...)))
}

func (u *user) errorf(format string, args ...any) {
	u.t.Helper()
	u.t.Error(u.redact(fmt.Sprintf(format, args...)))
}

func (u *user) redact(s string) string {
	for _, c := range u.canaries {
		s = strings.ReplaceAll(s, c, "<canary>")
	}
	return s
}

// mustSucceed fails the test unless r exited 0.
func mustSucceed(t testing.TB, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("llmkey failed: %v", r)
	}
	return r
}

// terminal runs llmkey on a pseudo-terminal, as a person at a shell would.
type terminal struct {
	t      testing.TB
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	screen bytes.Buffer
	done   chan struct{}
}

func (u *user) terminal(args ...string) *terminal {
	u.t.Helper()
	master, slave := openPTY(u.t)
	cmd := exec.Command(llmkeyBin, args...)
	cmd.Env = u.env
	cmd.Dir = u.home
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	slave.Close()
	tm := &terminal{t: u.t, master: master, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			tm.mu.Lock()
			tm.screen.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	u.t.Cleanup(func() { cmd.Process.Kill(); master.Close() })
	return tm
}

// waitFor waits until the screen shows s.
func (tm *terminal) waitFor(s string) {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tm.mu.Lock()
		ok := strings.Contains(tm.screen.String(), s)
		tm.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tm.t.Fatalf("terminal never showed %q; it shows:\n%s", s, tm.text())
}

func (tm *terminal) typeLine(s string) {
	tm.t.Helper()
	if _, err := tm.master.Write([]byte(s + "\r")); err != nil {
		tm.t.Fatal(err)
	}
}

// wait returns the exit code and everything the terminal showed.
func (tm *terminal) wait() (int, string) {
	tm.t.Helper()
	err := tm.cmd.Wait()
	select {
	case <-tm.done:
	case <-time.After(5 * time.Second):
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		tm.t.Fatal(err)
	}
	return code, tm.text()
}

func (tm *terminal) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.screen.String()
}

func writeFile(t testing.TB, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// needTool skips the test when the program name is not installed, saying
// which package brings it (a Debian one), unless CI=true: there every
// tool is installed (.ci/run does it), so a missing one fails the test.
func needTool(t testing.TB, name, pkg string) {
	t.Helper()
	if msg := missingTool(t, name, pkg); msg != "" {
		t.Skip(msg)
	}
}

// missingTool is "" when the program name is installed, else what to
// install; with CI=true a missing one fails the test.
func missingTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return ""
	}
	msg := fmt.Sprintf("%s is not installed: install it to run this test (Debian: apt-get install %s; .ci/run installs it)", name, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	return msg
}
