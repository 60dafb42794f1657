// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// llmkey test makes one call with exactly the key named and tells valid,
// invalid, out-of-quota, rate-limited and unreachable keys apart, by
// exit code and in words; add --check refuses an invalid key.
func TestKeyCheck(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"valid": u.canary("sk-proj-v-"), "invalid": u.canary("sk-proj-i-"), "quota": u.canary("sk-proj-q-"), "limited": u.canary("sk-proj-l-")}
	fake.on(keys["valid"], answer(200, nil, `{"object":"list","data":[{"id":"gpt-4o","object":"model"}]}`))
	fake.on(keys["invalid"], answer(401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`))
	fake.on(keys["quota"], answer(429, nil, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`))
	fake.on(keys["limited"], answer(429, map[string]string{"Retry-After": "20"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
	kf := fmt.Sprintf("[provider.openai]\nbase_url = %q\n\n[provider.down]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n\n[[key]]\nprovider = \"down\"\nname = \"x\"\nsecret = %q\n", fake.URL+"/v1", u.canary("sk-proj-d-"))
	for _, n := range []string{"valid", "invalid", "quota", "limited"} {
		kf += fmt.Sprintf("\n[[key]]\nprovider = \"openai\"\nname = %q\nsecret = %q\n", n, keys[n])
	}
	writeFile(t, u.keyfile(), kf, 0o600)
	for _, tt := range []struct {
		ref, word string
		code      int
	}{{"openai/valid", "valid", 0}, {"openai/invalid", "invalid", 10}, {"openai/quota", "out-of-quota", 11}, {"openai/limited", "rate-limited", 12}, {"down/x", "unreachable", 13}} {
		r := u.llmkey("test", tt.ref)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.ref) || !strings.Contains(r.stdout, tt.word) {
			t.Errorf("test %s: %v", tt.ref, r)
		}
	}
	n := len(fake.requests())
	if r := u.llmkey("test", "openai"); r.code != 12 && r.code != 11 && r.code != 10 {
		t.Errorf("test openai: exit %d", r.code)
	}
	if got := len(fake.requests()) - n; got != 4 {
		t.Errorf("test openai made %d calls, want one per key (4)", got)
	}
	for _, s := range fake.requests() {
		if s.Path != "/v1/models" {
			t.Errorf("a check went to %s", s.Path)
		}
	}

	bad := u.canary("sk-proj-bad-")
	fake.on(bad, answer(401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`))
	before := readFile(t, u.keyfile())
	r := u.pipe(bad, "add", "--check", "openai", "new")
	if r.code != 10 || !strings.Contains(r.stderr, "nothing added") || readFile(t, u.keyfile()) != before {
		t.Errorf("add --check of an invalid key: %v", r)
	}
	good := u.canary("sk-proj-good-")
	fake.on(good, answer(200, nil, `{"object":"list","data":[]}`))
	if r := u.pipe(good, "add", "--check", "--json", "openai", "new"); r.code != 0 || !strings.Contains(r.stdout, `"name":"new"`) {
		t.Errorf("add --check of a valid key: %v", r)
	}
}

// What llmkey test finds, the running daemon learns at once: a key the
// provider refuses is parked there (status then says so, exit 1, and
// that its secret is replaced with set --secret), and once the provider
// takes it again, a valid check brings it back; test never starts a
// daemon.
func TestTestTellsTheRunningDaemon(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	good, bad := u.canary("sk-proj-g-"), u.canary("sk-proj-b-")
	refuse := answer(401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`)
	fake.on(bad, refuse)
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"good\"\nsecret = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"bad\"\nsecret = %q\n",
		fake.URL+"/v1", good, bad), 0o600)
	if r := u.llmkey("test"); r.code != 10 || u.daemonPID() != 0 || strings.Contains(r.stdout, "daemon") {
		t.Errorf("test with no daemon running: %v (daemon pid %d)", r, u.daemonPID())
	}
	mustSucceed(t, u.llmkey("start"))
	if r := u.llmkey("status"); r.code != 0 {
		t.Fatalf("status before the check: %v", r)
	}
	r := u.llmkey("test")
	if r.code != 10 || !strings.Contains(r.stdout, "the daemon has it parked now (was ready)") {
		t.Errorf("test of a refused key: %v", r)
	}
	if ks := u.keyStatus("openai", "bad"); ks["state"] != "parked" {
		t.Errorf("the key test found invalid, in the daemon: %v", ks)
	}
	if ks := u.keyStatus("openai", "good"); ks["state"] != "ready" {
		t.Errorf("the valid key, in the daemon: %v", ks)
	}
	if r := u.llmkey("status"); r.code != 1 || !strings.Contains(r.stdout, "llmkey set openai/bad --secret") || strings.Contains(r.stdout, "llmkey rm openai/bad, then") {
		t.Errorf("status after test found a key invalid: %v", r)
	}
	fake.on(bad, nil) // the provider takes it again
	if r := u.llmkey("test", "openai/bad"); r.code != 0 || !strings.Contains(r.stdout, "the daemon has it ready now (was parked)") {
		t.Errorf("test of the key taken again: %v", r)
	}
	if r := u.llmkey("status"); r.code != 0 {
		t.Errorf("status after the key came back: %v", r)
	}
}

// add refuses what is plainly not a key of that provider, with a hint;
// import adds keys from the environment and from a .env file without
// echoing them; set changes a key's limits and leaves every other byte.
func TestAddRefusesImportsAndSets(t *testing.T) {
	u := newUser(t)
	ant := u.canary("sk-ant-api03-")
	for _, tt := range []struct{ secret, says string }{
		{ant, "looks like an anthropic key (sk-ant-...), not an openai one"},
		{"OPENAI_API_KEY=" + u.canary("sk-proj-"), "NAME=value line"},
		{"abc", "too short"},
	} {
		r := u.pipe(tt.secret, "add", "openai", "work")
		if r.code != 2 || !strings.Contains(r.stderr, tt.says) || !strings.Contains(r.stderr, "hint:") {
			t.Errorf("add %q under openai: %v", tt.says, r)
		}
	}
	if r := u.pipe(ant, "add", "--force", "openai", "odd"); r.code != 0 {
		t.Errorf("add --force: %v", r)
	}

	oa, gem := u.canary("sk-proj-env-"), u.canary("AIzaEnv")
	r := u.run(nil, []string{"OPENAI_API_KEY=" + oa, "GEMINI_API_KEY=" + gem}, "import", "--from-env")
	if r.code != 0 || !strings.Contains(r.stderr, "imported OPENAI_API_KEY") || !strings.Contains(r.stderr, "as gemini/key1") {
		t.Errorf("import --from-env: %v", r)
	}
	dotenv := filepath.Join(u.home, ".env")
	writeFile(t, dotenv, "# keys\nexport ANTHROPIC_API_KEY=\""+u.canary("sk-ant-api03-dot-")+"\"\nGROQ_API_KEY='"+u.canary("gsk_")+"'\nOPENAI_API_KEY="+oa+"\n", 0o600)
	r = u.llmkey("import", dotenv)
	if r.code != 0 || !strings.Contains(r.stderr, "as anthropic/key1") || !strings.Contains(r.stderr, "as groq/key1") || !strings.Contains(r.stderr, "already in the keyfile as openai/key1") {
		t.Errorf("import .env: %v", r)
	}
	list := mustSucceed(t, u.llmkey("list", "--json"))
	if c := strings.Count(list.stdout, `"provider"`); c != 5 {
		t.Errorf("%d keys after the imports:\n%s", c, list.stdout)
	}

	before := readFile(t, u.keyfile())
	mustSucceed(t, u.llmkey("set", "openai/key1", "--rpm", "60", "--max-concurrent", "4"))
	after := readFile(t, u.keyfile())
	i := strings.Index(after, "name = \"key1\"")
	if !strings.Contains(after, "rpm = 60\nmax_concurrent = 4\n") || strings.Replace(after, "rpm = 60\nmax_concurrent = 4\n", "", 1) != before || i < 0 {
		t.Errorf("set changed more than its lines:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if r := u.llmkey("set", "openai", "key1", "--rpm", "0"); r.code != 0 || strings.Contains(readFile(t, u.keyfile()), "rpm = 60") {
		t.Errorf("set openai key1 --rpm 0: %v", r)
	}
	_ = http.MethodGet
}
