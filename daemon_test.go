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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proxyEnv starts the daemon if needed and returns what "llmkey env" sets.
func (u *user) proxyEnv() map[string]string {
	u.t.Helper()
	r := mustSucceed(u.t, u.llmkey("env", "--shell", "json"))
	var m map[string]*string
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		u.fatalf("env --shell json: %v\n%s", err, r.stdout)
	}
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// chat sends a small chat request through the proxy.
func chat(t *testing.T, base, token string, header http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request through the proxy: %v", err)
	}
	return resp
}

func (u *user) status() (map[string]any, int) {
	u.t.Helper()
	r := u.llmkey("status", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		u.fatalf("status --json: %v\n%v", err, r)
	}
	return st, r.code
}

// Two keys of one provider are both used.
func TestTwoKeysBothUsed(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a := u.canary("sk-a-")
	u.writeKeyfile(fake.URL, map[string]string{"openai": a})
	b := u.canary("sk-b-")
	mustSucceed(t, u.pipe(b, "add", "openai", "second"))
	env := u.proxyEnv()
	for range 4 {
		resp := chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	count := map[string]int{}
	for _, s := range fake.requests() {
		count[s.credential()]++
	}
	if count[a] != 2 || count[b] != 2 {
		u.fatalf("4 requests over 2 keys: %v", count)
	}
}

// Strangers get 401/403 with X-Llmkey-Error and
// nothing reaches the provider.
func TestProxyRefusesStrangers(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-"), "anthropic": u.canary("sk-ant-"), "gemini": u.canary("AIza")})
	env := u.proxyEnv()
	base, token := env["LLMKEY_URL"], env["LLMKEY_TOKEN"]
	tests := []struct {
		name   string
		token  string
		header http.Header
		host   string
		status int
		code   string
	}{
		{"no token", "", nil, "", 401, "bad-token"},
		{"wrong token", "llmk-local-wrong", nil, "", 401, "bad-token"},
		{"token and a wrong x-api-key", token, http.Header{"X-Api-Key": {"nope"}}, "", 401, "bad-token"},
		{"browser origin", token, http.Header{"Origin": {"https://evil.example"}}, "", 403, "bad-origin"},
		{"foreign host", token, nil, "evil.example:80", 403, "bad-host"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{}`))
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		for k, v := range tt.header {
			req.Header[k] = v
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var shape struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal(body, &shape)
		if resp.StatusCode != tt.status || resp.Header.Get("X-Llmkey-Error") != tt.code || !strings.HasPrefix(shape.Error.Message, "llmkey: ") {
			t.Errorf("%s: got %d %q %s", tt.name, resp.StatusCode, resp.Header.Get("X-Llmkey-Error"), body)
		}
	}
	// Anthropic and Gemini clients get their own error shape.
	for _, tc := range []struct{ path, want string }{
		{"/anthropic/v1/messages", `"type":"error"`},
		{"/gemini/v1beta/models/g:generateContent", `"status":"UNAUTHENTICATED"`},
	} {
		resp, err := http.Post(base+tc.path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
	}
	if n := len(fake.requests()); n != 0 {
		t.Fatalf("%d refused requests reached the provider", n)
	}
	// The token works in every SDK's header, and as ?key=.
	for _, h := range []http.Header{{"X-Api-Key": {token}}, {"X-Goog-Api-Key": {token}}} {
		resp := chat(t, base, "", h)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("token in %v: %d", h, resp.StatusCode)
		}
	}
	resp, err := http.Post(base+"/gemini/v1beta/models/g:generateContent?key="+token, "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("token as ?key=: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := fake.requests(); len(got) != 3 || strings.Contains(got[2].Query, "key=") {
		t.Errorf("the provider saw %+v", got)
	}
}

// Twenty cold execs make one daemon; after kill -9
// the next exec starts a new one cleanly.
func TestColdExecStartsOneDaemon(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	var wg sync.WaitGroup
	results := make([]result, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = u.llmkey("exec", "--", "sh", "-c", "echo $LLMKEY_URL")
		}()
	}
	wg.Wait()
	urls := map[string]int{}
	for _, r := range results {
		if r.code != 0 {
			u.fatalf("a concurrent cold exec failed: %v", r)
		}
		urls[strings.TrimSpace(r.stdout)]++
	}
	if len(urls) != 1 {
		t.Fatalf("the execs saw %d different proxies: %v", len(urls), urls)
	}
	if n := u.countDaemons(); n != 1 {
		t.Fatalf("%d daemons run, want 1", n)
	}

	pid := u.daemonPID()
	syscall.Kill(pid, syscall.SIGKILL)
	for u.daemonPID() != 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(u.runtimeDir(), "sock")); err != nil {
		t.Fatalf("kill -9 should leave a stale socket behind for this test to mean something: %v", err)
	}
	r := mustSucceed(t, u.llmkey("exec", "--", "sh", "-c", "echo $LLMKEY_URL"))
	if newPID := u.daemonPID(); newPID == 0 || newPID == pid {
		t.Fatalf("no new daemon after kill -9 (old %d, new %d)", pid, newPID)
	}
	resp := chat(t, strings.TrimSpace(r.stdout), u.token(), nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("new daemon answered %d", resp.StatusCode)
	}
}

// countDaemons counts this user's daemon processes in /proc.
func (u *user) countDaemons() int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && args[0] == llmkeyBin && strings.Contains(string(cmdline), "\x00daemon\x00") &&
			strings.Contains(string(cmdline), u.keyfile()) {
			n++
		}
	}
	return n
}

// Keys added while the daemon runs serve within a
// second; a broken keyfile keeps the last good one serving and shows in
// status until it is fixed.
func TestHotReload(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-a-")})
	env := u.proxyEnv()
	base, token := env["LLMKEY_URL"], env["LLMKEY_TOKEN"]

	b := u.canary("sk-b-")
	mustSucceed(t, u.pipe(b, "add", "openai", "second"))
	added := time.Now()
	for {
		resp := chat(t, base, token, nil)
		resp.Body.Close()
		reqs := fake.requests()
		if reqs[len(reqs)-1].credential() == b {
			break
		}
		if time.Since(added) > time.Second {
			t.Fatal("the added key did not serve within a second")
		}
		time.Sleep(20 * time.Millisecond)
	}

	good := readFile(t, u.keyfile())
	writeFile(t, u.keyfile(), good+"\n[[key]]\nprovider = \"openai\"\nname = \"broken\nsecret = \"x\"\n", 0o600)
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, code := u.status()
		kf, _ := st["keyfile"].(map[string]any)
		if code == 1 && kf["error"] != nil {
			if line, _ := kf["line"].(float64); int(line) != strings.Count(good, "\n")+4 {
				t.Errorf("status names line %v for the error, want %d", kf["line"], strings.Count(good, "\n")+4)
			}
			break
		}
		if time.Now().After(deadline) {
			u.fatalf("status did not report the broken keyfile: %v %v", code, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := u.llmkey("status")
	if !regexp.MustCompile(`(?m)^error:\s+keyfile `+regexp.QuoteMeta(u.keyfile())+`:`).MatchString(r.stdout) || !strings.Contains(r.stdout, "hint:") {
		u.errorf("status text does not show the keyfile error:\n%s", r.stdout)
	}
	for range 4 {
		resp := chat(t, base, token, nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a request failed while the keyfile was broken: %d", resp.StatusCode)
		}
	}
	if r := u.llmkey("reload"); r.code != 4 || !strings.Contains(r.stderr, "keeps serving the last good keyfile") {
		u.errorf("reload of a broken keyfile: %v", r)
	}

	writeFile(t, u.keyfile(), good, 0o600)
	deadline = time.Now().Add(3 * time.Second)
	for {
		if _, code := u.status(); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("status did not recover after the keyfile was fixed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGTERM during a 5-second stream lets it finish,
// refuses new requests with "draining", and exits 0.
func TestDrainOnSIGTERM(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	cmd := exec.Command(llmkeyBin, "daemon")
	cmd.Env = u.env
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	var base string
	for line := range logs {
		if strings.Contains(line, "msg=ready") {
			_, after, _ := strings.Cut(line, "proxy=")
			base, _, _ = strings.Cut(after, " ")
			break
		}
	}
	go func() {
		for line := range logs {
			u.assertNoCanary(line)
		}
	}()
	token := u.token()

	req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"slow","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadString('\n')
	if err != nil || first != "data: {\"n\":0}\n" {
		t.Fatalf("first event: %q %v", first, err)
	}
	started := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)

	deadline := time.Now().Add(2 * time.Second)
	for {
		hz, err := http.Get(base + "/healthz")
		if err == nil && hz.StatusCode == 503 {
			hz.Body.Close()
			break
		}
		if hz != nil {
			hz.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("healthz never said 503 while draining")
		}
		time.Sleep(20 * time.Millisecond)
	}
	late := chat(t, base, token, nil)
	late.Body.Close()
	if late.StatusCode != 503 || late.Header.Get("X-Llmkey-Error") != "draining" || late.Header.Get("Retry-After") == "" {
		t.Errorf("a request during the drain got %d %q", late.StatusCode, late.Header.Get("X-Llmkey-Error"))
	}

	rest, err := io.ReadAll(rd)
	resp.Body.Close()
	want := "\ndata: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: {\"n\":3}\n\ndata: {\"n\":4}\n\ndata: [DONE]\n\n"
	if err != nil || string(rest) != want {
		t.Fatalf("the stream did not complete intact: %q %v", rest, err)
	}
	if time.Since(started) < 3*time.Second {
		t.Fatalf("the stream ended after %v; it should have run its 5 seconds", time.Since(started))
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after drain: %v", err)
	}
}

// The child's environment holds the token and the
// proxy URLs, never a real key; variables of providers without keys stay.
func TestExecEnvironment(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-"), "gemini": u.canary("AIza")})
	mine := "sk-ant-users-own-setting"
	r := mustSucceed(t, u.run(nil, []string{"OPENAI_API_KEY=" + u.canary("sk-old-"), "GOOGLE_API_KEY=" + u.canary("AIzaOld"),
		"ANTHROPIC_API_KEY=" + mine}, "exec", "--", "env"))
	env := map[string]string{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	token := u.token()
	base := env["LLMKEY_URL"]
	want := map[string]string{"OPENAI_BASE_URL": base + "/openai", "OPENAI_API_BASE": base + "/openai", "OPENAI_API_KEY": token,
		"GOOGLE_GEMINI_BASE_URL": base + "/gemini", "GEMINI_API_KEY": token, "LLMKEY_TOKEN": token,
		"ANTHROPIC_API_KEY": mine}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["GOOGLE_API_KEY"]; ok {
		t.Error("GOOGLE_API_KEY was left in the child's environment")
	}
	if _, ok := env["ANTHROPIC_BASE_URL"]; ok {
		t.Error("ANTHROPIC_BASE_URL set though anthropic has no key")
	}
	// exec's exit status is the command's own.
	if r := u.llmkey("exec", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exit status %d, want 7", r.code)
	}
	if r := u.llmkey("exec", "--", "no-such-command-xyz"); r.code != 127 || !strings.Contains(r.stderr, "command not found") {
		t.Errorf("missing command: %v", r)
	}
	// eval-able output for sh.
	r = mustSucceed(t, u.llmkey("env"))
	if !strings.Contains(r.stdout, "export OPENAI_BASE_URL='"+base+"/openai'\n") || !strings.Contains(r.stdout, "unset GOOGLE_API_KEY\n") {
		t.Errorf("env for sh:\n%s", r.stdout)
	}
}

// Status --json holds the fields the README documents, and
// exits 3, 0 and 1 as the daemon is absent, healthy and degraded.
func TestStatusExitCodesAndJSON(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})

	st, code := u.status()
	if code != 3 || st["running"] != false {
		t.Fatalf("no daemon: exit %d %v", code, st)
	}
	if r := u.llmkey("status", "-q"); r.code != 3 || r.stdout != "" || r.stderr != "" {
		t.Errorf("status -q without daemon: %v", r)
	}
	if r := u.llmkey("exec", "--no-start", "--", "true"); r.code != 3 || !strings.Contains(r.stderr, "hint: start it") {
		t.Errorf("exec --no-start without daemon: %v", r)
	}
	if n := u.countDaemons(); n != 0 {
		t.Fatal("status or exec --no-start started a daemon")
	}

	mustSucceed(t, u.llmkey("start"))
	st, code = u.status()
	if code != 0 {
		t.Fatalf("healthy daemon: exit %d %v", code, st)
	}
	for _, f := range []string{"running", "pid", "version", "proxy_url", "in_flight", "draining", "keyfile", "providers"} {
		if _, ok := st[f]; !ok {
			t.Errorf("status --json lacks %q", f)
		}
	}
	if kf := st["keyfile"].(map[string]any); kf["path"] != u.keyfile() {
		t.Errorf("keyfile.path = %v", kf["path"])
	}
	keys := st["providers"].(map[string]any)["openai"].(map[string]any)["keys"].([]any)
	k := keys[0].(map[string]any)
	for _, f := range []string{"name", "state", "cooldown_seconds"} {
		if _, ok := k[f]; !ok {
			t.Errorf("status key lacks %q: %v", f, k)
		}
	}
	if k["name"] != "work" || k["state"] != "ready" {
		t.Errorf("key status %v", k)
	}
	if int(st["pid"].(float64)) != u.daemonPID() {
		t.Errorf("pid %v, lock holder %d", st["pid"], u.daemonPID())
	}
	r := mustSucceed(t, u.llmkey("list"))
	if !strings.Contains(r.stdout, "ready") {
		t.Errorf("list with a daemon:\n%s", r.stdout)
	}

	writeFile(t, u.keyfile(), readFile(t, u.keyfile())+"\nbogus = \n", 0o600)
	mustSucceed(t, u.llmkey("start"))
	u.llmkey("reload")
	if st, code = u.status(); code != 1 || len(st["problems"].([]any)) == 0 {
		t.Fatalf("degraded daemon: exit %d %v", code, st)
	}
	mustSucceed(t, u.llmkey("stop"))
	if _, code = u.status(); code != 3 {
		t.Fatalf("after stop: exit %d", code)
	}
}

// A daemon that cannot start says why, and the CLI exits non-zero.
func TestStartFailuresAreExplained(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	busy := strings.TrimPrefix(fake.URL, "http://")
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), "127.0.0.1:0", busy, 1), 0o600)
	r := u.llmkey("exec", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot listen on "+busy) || !strings.Contains(r.stderr, "hint: another program uses that port") {
		t.Errorf("port in use: %v", r)
	}

	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	writeFile(t, u.keyfile(), readFile(t, u.keyfile())+"\n[[key]]\nprovider = \"nope\"\nname = \"x\"\nsecret = \"y\"\n", 0o600)
	r = u.llmkey("start")
	if r.code != 4 || !strings.Contains(r.stderr, `unknown provider "nope"`) || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("bad keyfile: %v", r)
	}
	if n := u.countDaemons(); n != 0 {
		t.Errorf("%d daemons left running after failed starts", n)
	}
}

// A daemon left running by another llmkey version is reported, with the
// fix, and "restart" brings up this version's daemon.
func TestVersionMismatchSaysRestart(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})

	old := filepath.Join(t.TempDir(), "llmkey-old")
	out, err := exec.Command("go", "build", "-o", old, "-ldflags", "-X github.com/llmkey/llmkey/cli.Version=0.0.1-old", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build the old version: %v\n%s", err, out)
	}
	cmd := exec.Command(old, "start")
	cmd.Env = u.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("old start: %v\n%s", err, out)
	}

	st, code := u.status()
	if code != 1 || st["version"] != "0.0.1-old" || !strings.Contains(fmt.Sprint(st["problems"]), "llmkey restart") {
		t.Fatalf("status against an old daemon: exit %d %v", code, st)
	}
	r := mustSucceed(t, u.llmkey("exec", "--", "true"))
	if !strings.Contains(r.stderr, "the daemon runs version 0.0.1-old") || !strings.Contains(r.stderr, "hint: restart it to use this version: llmkey restart") {
		t.Errorf("exec against an old daemon says nothing: %v", r)
	}

	mustSucceed(t, u.llmkey("restart"))
	if st, code = u.status(); code != 0 || st["version"] == "0.0.1-old" {
		t.Fatalf("after restart: exit %d %v", code, st)
	}
}

// A state or runtime dir llmkey cannot use is not a keyfile problem: the
// command exits 1 (not the keyfile's 4) with a hint about that dir.
func TestDirProblemsAreNotKeyfileErrors(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	notDir := filepath.Join(u.home, "a-file")
	writeFile(t, notDir, "x", 0o600)
	for _, v := range []string{"LLMKEY_RUNTIME_DIR", "LLMKEY_STATE_DIR"} {
		r := u.run(nil, []string{v + "=" + notDir}, "start")
		if r.code != 1 || !strings.Contains(r.stderr, "is not a directory") || !strings.Contains(r.stderr, "hint:") ||
			strings.Contains(r.stderr, "keyfile") {
			t.Errorf("%s is a file: %v", v, r)
		}
	}
}

// A token file that is a directory is reported as the token's problem,
// with a hint about the token, not the keyfile's.
func TestTokenThatIsADirectory(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	if err := os.MkdirAll(filepath.Join(u.stateDir(), "token"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := u.llmkey("start")
	if r.code != 1 || !strings.Contains(r.stderr, "token") || strings.Contains(r.stderr, "keyfile") || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("token is a directory: %v", r)
	}
}

// A runtime dir the CLI cannot dial into gets llmkey's own words and a
// hint, not Go's HTTP client error.
func TestStatusWithABrokenRuntimeDir(t *testing.T) {
	u := newUser(t)
	notDir := filepath.Join(u.home, "a-file")
	writeFile(t, notDir, "x", 0o600)
	r := u.run(nil, []string{"LLMKEY_RUNTIME_DIR=" + notDir}, "status")
	if r.code == 0 || strings.Contains(r.stderr, `Get "http://llmkey`) || !strings.Contains(r.stderr, "hint:") ||
		!strings.Contains(r.stderr, notDir) {
		t.Errorf("status with a runtime dir that is a file: %v", r)
	}
}
