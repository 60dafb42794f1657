// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// set changes only what it is given: limits, tags, a new secret read from
// standard input (which replaces a secret_cmd); with nothing to change it
// is a usage error, and an unknown key is said as such.
func TestSetCommand(t *testing.T) {
	_, p := tempUser(t)
	writeKeyfile(t, p, listKeyfile)
	set := func(in SetCommandInput, stdin string) (string, error) {
		s, _, errs := captured(t)
		s.In = secretIn(t, stdin)
		in.Keyfile = p.Keyfile
		err := SetCommand(context.Background(), in, s)
		return errs.String(), err
	}
	errs, err := set(SetCommandInput{Provider: "openai", Name: "work", Limits: map[string]int{"rpm": 0, "tpm": 9000}, Tags: []string{"a", "b"}}, "")
	if err != nil || errs != "changed openai/work in "+p.Keyfile+": rpm=60 -> tpm=9000\n" {
		t.Fatalf("%v: %q", err, errs)
	}
	const secret = "sk-proj-settestDDDDDDDDDDDDDDDDDDDDDDDD4321"
	errs, err = set(SetCommandInput{Provider: "openai", Name: "home", Secret: true}, secret)
	if err != nil || !strings.HasSuffix(errs, "; secret replaced ("+state.Mask(secret)+")\n") || strings.Contains(errs, secret) {
		t.Fatalf("%v: %q", err, errs)
	}
	cfg, err := state.Load(p.Keyfile)
	if err != nil {
		t.Fatal(err)
	}
	work, home := cfg.Keys[cfg.Find("openai", "work")], cfg.Keys[cfg.Find("openai", "home")]
	if work.RPM != 0 || work.TPM != 9000 || !slices.Equal(work.Tags, []string{"a", "b"}) || work.Secret != "sk-proj-listtestAAAAAAAAAAAAAAAAAAAA1234" {
		t.Errorf("openai/work: %+v", work)
	}
	if home.Secret != secret || home.SecretCmd != nil || !slices.Equal(home.Tags, []string{"home"}) {
		t.Errorf("openai/home: %+v", home)
	}

	if _, err := set(SetCommandInput{Provider: "openai", Name: "work"}, ""); ExitCode(err) != ExitUsage {
		t.Errorf("nothing to change: %v", err)
	}
	if _, err := set(SetCommandInput{Provider: "openai", Name: "gone", Limits: map[string]int{"rpm": 1}}, ""); err == nil || !strings.Contains(err.Error(), "openai/gone") {
		t.Errorf("an unknown key: %v", err)
	}
	if _, err := set(SetCommandInput{Provider: "openai", Name: "work", Limits: map[string]int{"max_concurrent": -1}}, ""); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--max-concurrent") {
		t.Errorf("a negative limit: %v", err)
	}
}
