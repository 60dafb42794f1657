// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The conventions of a command line people judge by gh: a "did you mean"
// for a key, both key spellings, days in durations, env --json, and a
// command that cannot run found before any daemon starts.
func TestCommandLineConventions(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), "name = \"a\"", "name = \"work\"", 1), 0o600)
	mustSucceed(t, u.llmkey("reload"))

	// A success reads as one: no "llmkey:" prefix (that is for errors and
	// warnings), and add says what to do next.
	if r := u.pipe(u.canary("sk-proj-"), "add", "openai", "second"); r.code != 0 || !strings.HasPrefix(r.stderr, "added openai/second (") ||
		!strings.Contains(r.stderr, "\nnext: llmkey test openai/second") {
		t.Errorf("add's success: %v", r)
	}
	// Keys added in turn for two providers: list groups them.
	mustSucceed(t, u.pipe(u.canary("sk-ant-api03-"), "add", "anthropic", "x"))
	mustSucceed(t, u.pipe(u.canary("sk-proj-"), "add", "openai", "third"))
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(mustSucceed(t, u.llmkey("list")).stdout), "\n")[1:] {
		order = append(order, strings.Fields(l)[0]+"/"+strings.Fields(l)[1])
	}
	if strings.Join(order, " ") != "anthropic/x openai/work openai/second openai/third" {
		t.Errorf("list's rows: %v", order)
	}
	if r := u.llmkey("disable", "openai/wrok"); r.code == 0 || !strings.Contains(r.stderr, "did you mean openai/work?") {
		t.Errorf("a misspelt key: %v", r)
	}
	if r := u.llmkey("disable", "--for", "1d", "openai", "work"); r.code != 0 || !strings.Contains(r.stderr, "disabled openai/work for 1d (until ") {
		t.Errorf("disable --for 1d openai work: %v", r)
	}
	if k := u.keyStatus("openai", "work"); k["state"] != "disabled" || k["cooldown_seconds"].(float64) < 86000 {
		t.Errorf("after disable --for 1d: %v", k)
	}
	mustSucceed(t, u.llmkey("enable", "openai", "work"))
	r := mustSucceed(t, u.llmkey("env", "--json"))
	var env map[string]*string
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || env["LLMKEY_TOKEN"] == nil {
		t.Errorf("env --json: %v", r)
	}
	mustSucceed(t, u.llmkey("usage", "--since", "today"))
	if r := u.llmkey("rm", "--force", "openai", "work"); r.code != 0 {
		t.Errorf("rm openai work: %v", r)
	}
	if r := u.llmkey("version"); !regexp.MustCompile(`\ndaemon \S+, pid \d+\n$`).MatchString(r.stdout) {
		t.Errorf("version does not show the daemon's: %v", r)
	}

	// Without a daemon: a command that cannot run starts none.
	u.stopDaemon()
	if r := u.llmkey("exec", "--", "/etc/passwd"); r.code != 126 || u.daemonPID() != 0 {
		t.Errorf("exec -- /etc/passwd: %v (daemon %d)", r, u.daemonPID())
	}
	if r := u.llmkey("exec", "--", "nosuchcmd-llmkey"); r.code != 127 || u.daemonPID() != 0 {
		t.Errorf("exec -- nosuchcmd: %v (daemon %d)", r, u.daemonPID())
	}
}

// usage prices the common models out of the box, shows a total that is
// at least the priced part when a model has no price, and groups by
// provider.
func TestUsagePricesOutOfTheBox(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	base, token := u.oneKey(fake.URL, u.canary("sk-"))
	for _, model := range []string{"gpt-4o-mini", "an-unknown-model"} {
		resp := chatModel(t, base, token, model)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// An answer is counted once its stream ended in the daemon, a moment
	// after the client read its last byte.
	var r result
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r = mustSucceed(t, u.llmkey("usage", "--by", "model", "--json"))
		if strings.Contains(r.stdout, "an-unknown-model") || time.Now().After(deadline) {
			break
		}
	}
	var rep struct {
		Rows []struct {
			Model string
			Cost  *float64 `json:"cost_usd"`
		}
		Total struct {
			Cost    *float64 `json:"cost_usd"`
			AtLeast *float64 `json:"cost_at_least_usd"`
		}
	}
	json.Unmarshal([]byte(r.stdout), &rep)
	priced := false
	for _, row := range rep.Rows {
		if row.Model == "gpt-4o-mini" && row.Cost != nil && *row.Cost > 0 {
			priced = true
		}
	}
	if !priced || rep.Total.Cost != nil || rep.Total.AtLeast == nil || *rep.Total.AtLeast <= 0 {
		t.Errorf("usage out of the box:\n%s", r.stdout)
	}
	if r := mustSucceed(t, u.llmkey("usage", "--by", "model")); !strings.Contains(r.stdout, ">=$") {
		t.Errorf("the total is not a lower bound:\n%s", r.stdout)
	}
	if r := mustSucceed(t, u.llmkey("usage", "--by", "provider")); !strings.Contains(r.stdout, "openai") {
		t.Errorf("usage --by provider:\n%s", r.stdout)
	}
}

// logs prints the daemon's log, and -f follows it.
func TestLogsFollow(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.oneKey(fake.URL, u.canary("sk-"))
	if r := mustSucceed(t, u.llmkey("logs")); !strings.Contains(r.stdout, "msg=ready") {
		t.Errorf("logs: %v", r)
	}
	cmd := exec.Command(llmkeyBin, "logs", "-f", "-n", "1")
	cmd.Env = u.env
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	mustSucceed(t, u.llmkey("reload"))
	deadline := time.After(5 * time.Second)
	for {
		select {
		case l := <-lines:
			u.assertNoCanary(l)
			if strings.Contains(l, "keyfile reloaded") {
				return
			}
		case <-deadline:
			t.Fatal("logs -f did not show the reload")
		}
	}
}

// chatModel sends a small chat request for model through the proxy.
func chatModel(t *testing.T, base, token, model string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"`+model+`","messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// add --group and set --group put a key in an organisation's group (and
// take it out); list shows it with the limits; a bad name changes nothing.
func TestGroupFromTheCommandLine(t *testing.T) {
	u := newUser(t)
	mustSucceed(t, u.pipe(u.canary("sk-"), "add", "openai", "work", "--group", "acme"))
	if kf := readFile(t, u.keyfile()); !strings.Contains(kf, `group = "acme"`) {
		t.Fatalf("add --group wrote:\n%s", kf)
	}
	before := readFile(t, u.keyfile())
	if r := u.llmkey("set", "openai/work", "--group", "a b"); r.code != 2 || !strings.Contains(r.stderr, `invalid group "a b"`) || readFile(t, u.keyfile()) != before {
		t.Errorf("set --group 'a b': %v", r)
	}
	mustSucceed(t, u.llmkey("set", "openai/work", "--group", "beta"))
	r := mustSucceed(t, u.llmkey("list", "--no-color"))
	if !strings.Contains(r.stdout, "group=beta") {
		t.Errorf("list:\n%s", r.stdout)
	}
	u.assertNoCanary(r.stdout + r.stderr)
	mustSucceed(t, u.llmkey("set", "openai/work", "--group", ""))
	if kf := readFile(t, u.keyfile()); strings.Contains(kf, "group") {
		t.Errorf("set --group '' left:\n%s", kf)
	}
}

// logs reads the log where the running daemon says it writes it: the file
// a service manager points its standard error at (launchd's
// StandardErrorPath) or systemd's journal, which a daemon knows by
// JOURNAL_STREAM (the device and inode of its standard error, which
// systemd sets), through the real journalctl. A daemon whose log is on a
// terminal or pipe has none to show, and logs says so.
func TestLogsOfAServiceManagedDaemon(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	logFile := filepath.Join(u.home, "service logs", "llmkey.err")
	if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err != nil {
		t.Fatal(err)
	}
	// run starts "llmkey daemon" with its standard error on f (nil: a
	// pipe) and the extra environment, and stops it at the end.
	run := func(f *os.File, env ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(llmkeyBin, "daemon")
		cmd.Env = append(append([]string{}, u.env...), env...)
		if f != nil {
			cmd.Stderr = f
		} else if _, err := cmd.StderrPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if st, code := u.status(); code == 0 && int(st["pid"].(float64)) == cmd.Process.Pid {
				log, _ := st["log"].(map[string]any)
				return log
			}
			if time.Now().After(deadline) {
				t.Fatal("the daemon did not start")
			}
		}
	}
	stop := func() {
		t.Helper()
		mustSucceed(t, u.llmkey("stop"))
	}

	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if log := run(f); log["path"] != logFile {
		t.Errorf("status names the log %v, want %s", log, logFile)
	}
	if r := mustSucceed(t, u.llmkey("logs")); !strings.Contains(r.stdout, "msg=ready") {
		t.Errorf("logs of a daemon logging to %s: %v", logFile, r)
	}
	if r := mustSucceed(t, u.llmkey("status")); !strings.Contains(r.stdout, "log:     "+logFile) {
		t.Errorf("status does not say where the log is:\n%s", r.stdout)
	}
	stop()

	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	journal := fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino)
	if log := run(f, journal); log["journal_unit"] != "llmkey.service" || log["path"] != nil {
		t.Errorf("status of a daemon logging to the journal names %v", log)
	}
	want := "logs to systemd's journal: journalctl --user-unit llmkey.service --output cat --no-pager --lines 100"
	if r := u.llmkey("logs"); !strings.Contains(r.stderr, want) || strings.Contains(r.stdout, "msg=ready") {
		t.Errorf("logs of a daemon logging to the journal: %v", r)
	} else if _, err := exec.LookPath("journalctl"); err == nil && r.code != 0 {
		t.Errorf("journalctl, which is installed, failed: %v", r)
	}
	stop()

	run(nil)
	if r := u.llmkey("logs"); r.code == 0 || !strings.Contains(r.stderr, "logs to its standard error") {
		t.Errorf("logs of a daemon logging to a pipe: %v", r)
	}
	u.assertNoCanary(readFile(t, logFile))
}
