// SPDX-License-Identifier: MIT

package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// What llmkey test found of a key acts in the daemon at once, as the same
// answer to a request would: a 401 parks it, a valid answer brings it
// back. A check of a secret the key no longer has (changed since) is
// refused and changes nothing, and so is a check that names no class.
func TestKeyCheckedActsOnlyOnTheSecretChecked(t *testing.T) {
	d := testDaemon(t, "")
	srv := httptest.NewServer(d.controlHandler())
	defer srv.Close()
	report := func(chk control.KeyCheck) (int, control.KeyStatus) {
		t.Helper()
		b, _ := json.Marshal(chk)
		resp, err := http.Post(srv.URL+"/v1/keys/openai/a/checked", "application/json", strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ks control.KeyStatus
		json.NewDecoder(resp.Body).Decode(&ks)
		return resp.StatusCode, ks
	}
	fp := state.Fingerprint(testSecret)
	stale := control.KeyCheck{Fingerprint: state.Fingerprint("sk-the-secret-before"), Class: "invalid-key", Status: 401, Reason: "401 invalid key"}
	if code, _ := report(stale); code != http.StatusConflict || d.status().Providers["openai"].Keys[0].State != "ready" {
		t.Errorf("a check of another secret: %d, the key %s", code, d.status().Providers["openai"].Keys[0].State)
	}
	if code, _ := report(control.KeyCheck{Fingerprint: fp, Class: "broken"}); code != http.StatusBadRequest {
		t.Errorf("a check of no class: %d", code)
	}
	code, ks := report(control.KeyCheck{Fingerprint: fp, Class: "invalid-key", Status: 401, Reason: "401 invalid key"})
	if code != 200 || ks.State != "parked" || !strings.Contains(ks.Action, "llmkey set openai/a --secret") {
		t.Errorf("a 401: %d %+v", code, ks)
	}
	if st := d.status(); len(st.Problems) == 0 {
		t.Error("status has no problem with a key parked by a check")
	}
	if code, ks := report(control.KeyCheck{Fingerprint: fp, Class: "success"}); code != 200 || ks.State != "ready" {
		t.Errorf("a valid check of the parked key: %d %+v", code, ks)
	}
	resp, err := http.Post(srv.URL+"/v1/keys/openai/nosuch/checked", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("a check of no key: %d", resp.StatusCode)
	}
}

// A rename announced before the keyfile changes is carried out by the
// load that serves the new name: the key keeps its parking and its
// usage rows (of every day, and of a request that was answered after the
// rename), under its new name. A load that does not rename it leaves the
// announcement waiting, and one no load fulfils in a minute is dropped.
func TestRenameCarriesTheKeyOver(t *testing.T) {
	d := testDaemon(t, "")
	srv := httptest.NewServer(d.controlHandler())
	defer srv.Close()
	clk := d.clock.(*fakeClock)
	fp := state.Fingerprint(testSecret)
	d.snap.Load().Providers["openai"].Pool.Checked("a", rotate.Outcome{Class: rotate.InvalidKey, Status: 401, Reason: "401 invalid key"})
	d.usage.Add(clk.Now().Add(-72*time.Hour), state.UsageKey{Provider: "openai", Key: "a", Fingerprint: fp, Model: "gpt-4o"}, state.Counts{Requests: 2})
	d.usage.Add(clk.Now(), state.UsageKey{Provider: "openai", Key: "a", Fingerprint: fp, Model: "gpt-4o"}, state.Counts{Requests: 3})
	for body, want := range map[string]int{`{"to":"a"}`: 400, `{"to":"no/name"}`: 400, `{"to":"work"}`: 202} {
		resp, err := http.Post(srv.URL+"/v1/keys/openai/a/rename", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("rename %s: %d, want %d", body, resp.StatusCode, want)
		}
	}
	publish := func(name string) {
		t.Helper()
		cfg, err := state.Parse("k.toml", []byte("[provider.openai]\nbase_url = \"http://127.0.0.1:1/v1\"\n\n[[key]]\nprovider = \"openai\"\nname = \""+name+"\"\nsecret = \""+testSecret+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if err := d.publish(cfg, nil); err != nil {
			t.Fatal(err)
		}
	}
	publish("a") // a reload before the edit: nothing yet
	if len(d.renames) != 1 {
		t.Fatalf("a load without the rename used up its announcement: %v", d.renames)
	}
	publish("work")
	ks := d.status().Providers["openai"].Keys
	if len(ks) != 1 || ks[0].Name != "work" || ks[0].State != "parked" {
		t.Errorf("after the rename: %+v", ks)
	}
	// An answer to a request that began before the rename.
	d.usage.Add(clk.Now(), state.UsageKey{Provider: "openai", Key: "a", Fingerprint: fp, Model: "gpt-4o"}, state.Counts{Requests: 1})
	rows, _ := d.usage.snapshot()
	byKey := map[string]int64{}
	for _, r := range rows {
		byKey[r.Key] += r.Requests
	}
	if byKey["work"] != 6 || byKey["a"] != 0 {
		t.Errorf("usage after the rename: %v, want work 6", byKey)
	}
	if d.usage.historyGeneration() == 0 {
		t.Error("the rename left the usage of the days before for the keeper to skip")
	}
	// An announcement no load fulfils is dropped after a minute.
	http.Post(srv.URL+"/v1/keys/openai/work/rename", "application/json", strings.NewReader(`{"to":"home"}`))
	clk.advance(2 * time.Minute)
	publish("work")
	if len(d.renames) != 0 {
		t.Errorf("an announcement older than a minute is still waiting: %v", d.renames)
	}
}

// exec and env are told a single key's problem once, and again only when
// it changes or comes back; a wait counting down in it is no change.
// What keeps a tool from being served is told every time.
func TestKeyProblemsAreToldOnce(t *testing.T) {
	var told toldProblems
	st := func(reason string) control.Status {
		k := control.KeyStatus{Provider: "openai", Name: "kc", State: "unavailable", Reason: reason, Action: "wait"}
		if reason == "" {
			k.State, k.Action = "ready", ""
		}
		s := control.Status{Providers: map[string]control.ProviderStatus{"openai": {Keys: []control.KeyStatus{k, {Provider: "openai", Name: "ok", State: "ready"}}}},
			Problems: []string{"no keys: add one"}}
		if reason != "" {
			s.Problems = append(s.Problems, KeyProblem(k))
		}
		return s
	}
	for i, tt := range []struct {
		reason string
		want   int
	}{
		{"the keychain is locked: asks again in 59s", 2},
		{"the keychain is locked: asks again in 31s", 1}, // the same, counting down
		{"no D-Bus session bus", 2},                      // changed
		{"no D-Bus session bus", 1},
		{"", 1},                     // gone
		{"no D-Bus session bus", 2}, // back
	} {
		if got := told.untold(st(tt.reason)); len(got) != tt.want || got[0] != "no keys: add one" {
			t.Errorf("call %d (%q): told %q", i, tt.reason, got)
		}
	}
}
