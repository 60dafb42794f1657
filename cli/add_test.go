// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// secretIn is a standard input that holds secret, as a pipe would.
func secretIn(t *testing.T, secret string) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// add takes the secret from standard input, names the key key1 when no
// name is given, creates the keyfile, and refuses what it must before
// reading a secret: an argument that looks like one, an unknown
// provider, a name taken.
func TestAddCommand(t *testing.T) {
	_, p := tempUser(t)
	const secret = "sk-proj-addtestCCCCCCCCCCCCCCCCCCCCCCCC9876"
	add := func(in AddCommandInput, stdin string) (string, error) {
		s, _, errs := captured(t)
		s.In = secretIn(t, stdin)
		in.Keyfile = p.Keyfile
		err := AddCommand(context.Background(), in, s)
		return errs.String(), err
	}
	errs, err := add(AddCommandInput{Provider: "openai", RPM: 60}, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(errs, "added openai/key1 ("+state.Mask(secret)+") to "+p.Keyfile+":") || strings.Contains(errs, secret) {
		t.Errorf("stderr: %q", errs)
	}
	cfg, err := state.Load(p.Keyfile)
	if err != nil || len(cfg.Keys) != 1 || cfg.Keys[0].Ref() != "openai/key1" || cfg.Keys[0].Secret != secret || cfg.Keys[0].RPM != 60 {
		t.Fatalf("keyfile: %+v %v", cfg, err)
	}

	var dup *state.DuplicateError
	if _, err := add(AddCommandInput{Provider: "openai", Name: "key1"}, secret); !errors.As(err, &dup) {
		t.Errorf("a name taken: %v", err)
	}
	for what, in := range map[string]AddCommandInput{
		"a secret as the name": {Provider: "openai", Name: secret},
		"an unknown provider":  {Provider: "opneai"},
		"a negative limit":     {Provider: "openai", TPM: -1},
	} {
		if _, err := add(in, secret); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v", what, err)
		}
	}
	if _, err := add(AddCommandInput{Provider: "openai", Name: "empty"}, ""); err == nil || !strings.Contains(err.Error(), "no secret on standard input") {
		t.Errorf("no secret: %v", err)
	}
	if cfg, _ := state.Load(p.Keyfile); len(cfg.Keys) != 1 {
		t.Errorf("a refused key was added: %+v", cfg.Keys)
	}
}
