// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// list --json carries every field of a key but its secret, under the
// keyfile's name, and the table's LIMITS column every number set.
func TestListShowsEveryKeyField(t *testing.T) {
	tags := map[string]bool{}
	lt := reflect.TypeFor[listedKey]()
	for i := range lt.NumField() {
		tags[strings.Split(lt.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	for _, f := range state.KeyFieldNames() {
		if f != "secret" && !tags[f] {
			t.Errorf("list --json has no %q", f)
		}
	}
	k := state.Key{Provider: "openai", Name: "a", RPM: 60, TPD: 9, Weight: 2, Models: []string{"gpt-*"}}
	if got := limits(k); got != "rpm=60,tpd=9,weight=2,models=gpt-*" {
		t.Errorf("limits: %q", got)
	}
}

// listKeyfile has keys of two providers, interleaved as add leaves them,
// one whose secret comes from a command.
const listKeyfile = `[[key]]
provider = "openai"
name = "work"
secret = "sk-proj-listtestAAAAAAAAAAAAAAAAAAAA1234"
rpm = 60

[[key]]
provider = "anthropic"
name = "main"
secret = "sk-ant-api03-listtestBBBBBBBBBBBBBBBBBBB5678"

[[key]]
provider = "openai"
name = "home"
secret_cmd = ["pass", "show", "openai"]
tags = ["home"]
`

// usedToday writes usage files in which ref used requests today; at a
// day's end, the next day too, so that list counts them on either.
func usedToday(t *testing.T, p state.Paths, k state.UsageKey, c state.Counts) {
	t.Helper()
	u := &state.Usage{Version: state.UsageVersion}
	now := time.Now()
	for _, day := range slices.Compact([]string{state.Day(now), state.Day(now.Add(time.Minute))}) {
		k.Day = day
		u.Rows = append(u.Rows, state.UsageRow{UsageKey: k, Counts: c})
	}
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := state.WriteAtomic(state.UsageRecentFile(p.StateDir), u.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// With no daemon, list prints the keyfile's keys grouped by provider,
// secrets masked, today's counts from the usage files; --json has them
// in file order with every field; neither shows a secret.
func TestListCommandWithoutTheDaemon(t *testing.T) {
	_, p := tempUser(t)
	writeKeyfile(t, p, listKeyfile)
	work := "sk-proj-listtestAAAAAAAAAAAAAAAAAAAA1234"
	usedToday(t, p, state.UsageKey{Provider: "openai", Key: "work", Fingerprint: state.Fingerprint(work), Model: "gpt-4o"},
		state.Counts{Requests: 3, Successes: 3, Input: 100, Output: 20})
	in := ListCommandInput{Keyfile: p.Keyfile, Paths: p}

	s, out, errs := captured(t)
	if err := ListCommand(context.Background(), in, s); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"PROVIDER", "NAME", "SECRET", "STATE", "WAIT", "REQS", "TOKENS", "LIMITS", "REASON"},
		{"anthropic", "main", state.Mask("sk-ant-api03-listtestBBBBBBBBBBBBBBBBBBB5678"), "unknown", "-", "0", "0", "-", "daemon not running"},
		{"openai", "work", state.Mask(work), "unknown", "-", "3", "120", "rpm=60", "daemon not running"},
		{"openai", "home", "(secret_cmd)", "unknown", "-", "0", "0", "-", "daemon not running"},
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if got := append(f[:8:8], strings.Join(f[8:], " ")); !slices.Equal(got, want[i]) {
			t.Errorf("row %d: %q, want %q", i, got, want[i])
		}
	}
	if errs.Len() != 0 {
		t.Errorf("stderr: %q", errs)
	}

	s, out, _ = captured(t)
	in.JSON = true
	if err := ListCommand(context.Background(), in, s); err != nil {
		t.Fatal(err)
	}
	var got listOutput
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Keyfile != p.Keyfile || got.Daemon.Running || len(got.Keys) != 3 {
		t.Fatalf("--json: %+v", got)
	}
	w, a, h := got.Keys[0], got.Keys[1], got.Keys[2]
	switch {
	case w.Name != "work" || w.Fingerprint != state.Fingerprint(work) || w.RPM != 60 || w.RequestsToday != 3 || w.TokensToday != 120 || w.State != "unknown":
		t.Errorf("openai/work: %+v", w)
	case a.Provider != "anthropic" || a.Name != "main" || a.Reason != "daemon not running" || a.Tags == nil || a.Models == nil || a.RecentFailures == nil:
		t.Errorf("anthropic/main: %+v", a)
	case h.Name != "home" || h.MaskedSecret != "(secret_cmd)" || h.Fingerprint != "" || !slices.Equal(h.SecretCmd, []string{"pass", "show", "openai"}) || !slices.Equal(h.Tags, []string{"home"}):
		t.Errorf("openai/home: %+v", h)
	}
	for _, secret := range []string{"listtestAAAA", "listtestBBBB"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("--json shows a secret: %s", out)
		}
	}
}

// With no keyfile, list says there are no keys and how to add one.
func TestListCommandWithoutAKeyfile(t *testing.T) {
	_, p := tempUser(t)
	s, out, errs := captured(t)
	if err := ListCommand(context.Background(), ListCommandInput{Keyfile: p.Keyfile, Paths: p}, s); err != nil {
		t.Fatal(err)
	}
	want := "llmkey: no keys in " + p.Keyfile + " (it does not exist yet)\nhint: add one: printf %s \"$KEY\" | llmkey add PROVIDER NAME\n"
	if out.Len() != 0 || errs.String() != want {
		t.Errorf("stdout %q, stderr %q", out, errs)
	}
}

// With a daemon running on this keyfile, list shows each key's live
// state: matched by fingerprint, or by name for a secret only the daemon
// read (secret_cmd), whose fingerprint it then shows; a key the daemon
// has not loaded says so. A daemon serving another keyfile lends none.
func TestListCommandWithTheDaemon(t *testing.T) {
	_, p := tempUser(t)
	writeKeyfile(t, p, listKeyfile)
	work := state.Fingerprint("sk-proj-listtestAAAAAAAAAAAAAAAAAAAA1234")
	status := func(keyfile string) control.Status {
		return control.Status{Running: true, Keyfile: &control.KeyfileStatus{Path: keyfile}, Providers: map[string]control.ProviderStatus{
			"openai": {Keys: []control.KeyStatus{
				{Name: "work", Fingerprint: work, State: "cooling", Reason: "rate limited", CooldownSeconds: 30, RequestsToday: 7, TokensToday: 700},
				{Name: "home", Fingerprint: "f1f2f3f4", State: "ready"},
			}},
		}}
	}
	list := func(keyfile string) listOutput {
		q := fakeDaemon(t, p, map[string]any{"GET /v1/status": status(keyfile)})
		s, out, _ := captured(t)
		if err := ListCommand(context.Background(), ListCommandInput{Keyfile: p.Keyfile, Paths: q, JSON: true}, s); err != nil {
			t.Fatal(err)
		}
		var got listOutput
		if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Keys) != 3 {
			t.Fatalf("%v\n%s", err, out)
		}
		return got
	}
	got := list(p.Keyfile)
	w, a, h := got.Keys[0], got.Keys[1], got.Keys[2]
	switch {
	case !got.Daemon.Running || got.Daemon.Keyfile != p.Keyfile:
		t.Errorf("daemon: %+v", got.Daemon)
	case w.State != "cooling" || w.Reason != "rate limited" || w.CooldownSeconds != 30 || w.RequestsToday != 7 || w.TokensToday != 700:
		t.Errorf("openai/work: %+v", w)
	case a.State != "unknown" || a.Reason != "not loaded by the daemon yet":
		t.Errorf("anthropic/main: %+v", a)
	case h.State != "ready" || h.Fingerprint != "f1f2f3f4":
		t.Errorf("openai/home: %+v", h)
	}

	got = list("/elsewhere/keys.toml")
	if w := got.Keys[0]; w.State != "unknown" || w.Reason != "the daemon serves another keyfile (/elsewhere/keys.toml)" || w.RequestsToday != 0 {
		t.Errorf("another keyfile's daemon: %+v", w)
	}
}
