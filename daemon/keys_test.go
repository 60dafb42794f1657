package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/daemon/control"
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
