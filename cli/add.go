// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/secrets"
	"github.com/llmkey/llmkey/state"
)

// AddCommandInput is what "llmkey add" was asked to do.
type AddCommandInput struct {
	Keyfile       string
	Provider      string
	Name          string // empty: pick key1, key2, ...
	RPM           int
	TPM           int
	MaxConcurrent int
	RPD, TPD      int
	Weight        int
	Models        []string
	Tags          []string
	Group         string
	// Force adds a secret of an unusual shape; Check makes one call with
	// it first and refuses it when the provider does; JSON prints what
	// was added for a script.
	Force, Check, JSON bool
	// Keychain stores the secret in the OS keychain and only
	// keychain = true in the keyfile.
	Keychain bool
}

func ConfigureAddCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "add",
		Usage:     "add a key; the secret is typed without echo, or piped on standard input",
		ArgsUsage: "PROVIDER [NAME]",
		Description: "Reads the secret with echo off when standard input is a terminal, otherwise from standard input " +
			"(printf %s \"$KEY\" | llmkey add openai work). The secret is never taken from the command line, where it " +
			"would reach shell history and the process list. NAME defaults to key1, key2, ... The keyfile and its " +
			"directory are created (0600, 0700) if missing; the new [[key]] block is inserted after the last one and " +
			"nothing else in the file changes.",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "rpm", Usage: "at most `N` requests a minute with this key", DefaultText: "no limit"},
			&ucli.IntFlag{Name: "tpm", Usage: "at most `N` tokens a minute with this key", DefaultText: "no limit"},
			&ucli.IntFlag{Name: "max-concurrent", Usage: "at most `N` requests in flight with this key", DefaultText: "no limit"},
			&ucli.IntFlag{Name: "rpd", Usage: "at most `N` requests a day (UTC) with this key", DefaultText: "no limit"},
			&ucli.IntFlag{Name: "tpd", Usage: "at most `N` tokens a day (UTC) with this key", DefaultText: "no limit"},
			&ucli.IntFlag{Name: "weight", Usage: "`N` shares of requests under the weighted strategy", DefaultText: "1"},
			&ucli.StringSliceFlag{Name: "models", Usage: "only use this key for these models (`GLOB`s, comma-separated or repeated)"},
			&ucli.StringSliceFlag{Name: "tag", Usage: "tag the key `TAG` for exec --tag (repeatable)"},
			&ucli.StringFlag{Name: "group", Usage: "the key shares the quota of organisation `NAME` with the other keys of that group"},
			&ucli.BoolFlag{Name: "check", Usage: "make one call with the key first, and refuse it if the provider does"},
			&ucli.BoolFlag{Name: "force", Usage: "add a secret even if it does not look like this provider's key"},
			&ucli.BoolFlag{Name: "json", Usage: "print the key added (provider, name, line) as JSON"},
			&ucli.BoolFlag{Name: "keychain", Usage: "keep the secret in the OS keychain; the keyfile gets keychain = true"},
		},
		BashComplete: completeProviders,
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 1, 2); err != nil {
				return err
			}
			p, err := resolvePaths(c)
			if err != nil {
				return err
			}
			in := AddCommandInput{
				Keyfile: p.Keyfile, Provider: c.Args().Get(0), Name: c.Args().Get(1),
				RPM: c.Int("rpm"), TPM: c.Int("tpm"), MaxConcurrent: c.Int("max-concurrent"), Weight: c.Int("weight"),
				RPD: c.Int("rpd"), TPD: c.Int("tpd"), Tags: c.StringSlice("tag"), Group: c.String("group"),
				Force: c.Bool("force"), Check: c.Bool("check"), JSON: c.Bool("json"), Keychain: c.Bool("keychain"),
			}
			for _, m := range c.StringSlice("models") {
				for _, part := range strings.Split(m, ",") {
					if part = strings.TrimSpace(part); part != "" {
						in.Models = append(in.Models, part)
					}
				}
			}
			return AddCommand(c.Context, in, streams(c))
		},
	})
}

// AddCommand reads the secret and adds the key to the keyfile.
func AddCommand(ctx context.Context, in AddCommandInput, s Streams) error {
	for _, f := range []struct {
		name string
		v    int
	}{{"--rpm", in.RPM}, {"--tpm", in.TPM}, {"--max-concurrent", in.MaxConcurrent}, {"--rpd", in.RPD}, {"--tpd", in.TPD}, {"--weight", in.Weight}} {
		if f.v < 0 {
			return usageError("use 0 for no limit", "%s must not be negative", f.name)
		}
	}
	// Check everything we can before the person types the secret.
	cfg, err := addTarget(&in)
	if err != nil {
		return err
	}
	prov, _ := cfg.Provider(in.Provider)
	secret, err := readNewSecret(s, in, prov.Kind)
	if err != nil {
		return err
	}
	k := state.Key{Provider: in.Provider, Name: in.Name, Secret: secret, RPM: in.RPM, TPM: in.TPM,
		MaxConcurrent: in.MaxConcurrent, RPD: in.RPD, TPD: in.TPD, Weight: in.Weight, Models: in.Models, Tags: in.Tags, Group: in.Group}
	if in.Check {
		if err := checkBeforeAdding(ctx, prov, k, s); err != nil {
			return err
		}
	}
	if in.Keychain {
		if err := secrets.Store(k, secret); err != nil {
			return fail(hintOr(err, "unlock the keychain (on Linux, a Secret Service such as gnome-keyring must run), or add the key without --keychain"), "%v; nothing added", err)
		}
		k.Secret, k.Keychain = "", true
	}
	line, err := state.AddKey(in.Keyfile, k)
	if err != nil {
		if in.Keychain {
			secrets.Delete(k)
		}
		return err
	}
	if in.JSON {
		json.NewEncoder(s.Out).Encode(map[string]any{"provider": in.Provider, "name": in.Name, "line": line, "keyfile": in.Keyfile})
	}
	ref := in.Provider + "/" + in.Name
	s.done("added %s (%s) to %s:%d", ref, state.Mask(secret), in.Keyfile, line)
	fmt.Fprintf(s.Err, "next: llmkey test %s, then llmkey exec -- TOOL\n", ref)
	return nil
}

// addTarget is the keyfile the key goes to (an empty one if there is
// none yet), with in.Name picked when it was not given: it refuses an
// argument that looks like a secret, an unknown provider, a bad name
// and one already taken.
func addTarget(in *AddCommandInput) (*state.Config, error) {
	cfg, err := state.Load(in.Keyfile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cfg = &state.Config{Path: in.Keyfile}
	case err != nil:
		return nil, err
	}
	if state.LooksLikeSecret(in.Provider) || state.LooksLikeSecret(in.Name) {
		return nil, usageError("the secret is never taken from the command line: pipe it (printf %s \"$KEY\" | llmkey add PROVIDER NAME) "+
			"or type it at the prompt; clear it from your shell history", "refusing an argument that looks like a secret; nothing added")
	}
	if _, ok := cfg.Provider(in.Provider); !ok {
		hint := "built-in providers: " + strings.Join(state.BuiltinNames(), ", ") +
			"; define others in the keyfile as [provider.NAME] with kind and base_url"
		if s := cfg.SuggestProvider(in.Provider); s != "" {
			hint = fmt.Sprintf("did you mean %q? %s", s, hint)
		}
		return nil, fail(hint, "unknown provider %q", in.Provider)
	}
	if in.Name == "" {
		in.Name = freeName(cfg, in.Provider)
	}
	if !state.ValidName(in.Name) {
		return nil, usageError("use letters, digits, '.', '-' and '_' (at most 64)", "invalid key name %q", in.Name)
	}
	if i := cfg.Find(in.Provider, in.Name); i >= 0 {
		return nil, &state.DuplicateError{Ref: in.Provider + "/" + in.Name, Path: in.Keyfile, Line: cfg.KeyLine(i)}
	}
	return cfg, nil
}

// readNewSecret reads the key's secret from s.In, and refuses none, one
// with spaces or control characters, and (without --force) one that does
// not look like a key of the provider's kind.
func readNewSecret(s Streams, in AddCommandInput, kind state.Kind) (string, error) {
	secret, err := readSecret(s.In, s.Err, fmt.Sprintf("secret for %s/%s (input hidden): ", in.Provider, in.Name))
	if err != nil {
		return "", err
	}
	switch {
	case secret == "" && isTerminal(s.In):
		return "", fail("paste the key at the prompt", "no secret typed; nothing added")
	case secret == "":
		return "", fail(`pipe the key in (printf %s "$KEY" | llmkey add `+in.Provider+" "+in.Name+
			"), or run the command in a terminal to type it", "no secret on standard input; nothing added")
	case strings.ContainsFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "", fail("give one key exactly as the provider issued it", "the secret contains spaces or control characters; nothing added")
	}
	if problem, hint := state.SecretProblem(in.Provider, kind, secret); problem != "" && !in.Force {
		return "", usageError(hint, "%s; nothing added", problem)
	}
	return secret, nil
}

// checkBeforeAdding makes one call with k, and refuses it when the
// provider does; any other verdict is only said.
func checkBeforeAdding(ctx context.Context, prov state.Provider, k state.Key, s Streams) error {
	v := checkKey(ctx, prov, k)
	switch v.Result {
	case "valid":
	case "invalid":
		return &Error{Err: fmt.Errorf("%s refused the key (%s); nothing added", k.Provider, v.Detail),
			Hint: "check that it is the whole key, and not revoked", Code: ExitKeyInvalid}
	default:
		s.info("warning: the check said %s (%s); adding it all the same", v.Result, v.Detail)
	}
	return nil
}

// freeName picks key1, key2, ... whichever is the first not taken.
func freeName(cfg *state.Config, provider string) string {
	for n := 1; ; n++ {
		name := "key" + strconv.Itoa(n)
		if cfg.Find(provider, name) < 0 {
			return name
		}
	}
}
