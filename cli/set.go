// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/secrets"
	"github.com/llmkey/llmkey/state"
)

// SetCommandInput is what "llmkey set PROVIDER/NAME" was asked to do:
// the limits given (nil: unchanged), tags, a new secret.
type SetCommandInput struct {
	Keyfile        string
	Provider, Name string
	Limits         map[string]int     // by keyfile name: rpm, tpm, ...
	Budgets        map[string]float64 // by keyfile name: budget_usd_day, ...
	Tags           []string           // replaces the key's; nil: unchanged
	Models         []string
	Group          *string // nil: unchanged; "": none
	Secret         bool    // read a new secret, as add does
	Force          bool
	// Keychain moves the secret (the one in the keyfile, or the new one)
	// into the OS keychain.
	Keychain bool
}

// limitZero says what 0 means for a key's number: no limit, except for
// the weight, which is a share, not a limit.
func limitZero(field string) string {
	if field == "weight" {
		return "(its share of requests under the weighted strategy; 0: the default, 1)"
	}
	return "(0: no limit)"
}

func ConfigureSetCommand(app *ucli.App) {
	flags := []ucli.Flag{
		&ucli.StringSliceFlag{Name: "tag", Usage: "the key's tags become `TAG`s (repeatable; --tag '' clears them)"},
		&ucli.StringSliceFlag{Name: "models", Usage: "the key serves only these models (`GLOB`s; --models '' clears them)"},
		&ucli.StringFlag{Name: "group", Usage: "the key shares the quota of organisation `NAME` with its group (--group '' takes it out)"},
		&ucli.BoolFlag{Name: "secret", Usage: "replace the secret: typed without echo, or piped on standard input"},
		&ucli.BoolFlag{Name: "force", Usage: "take a secret even if it does not look like this provider's key"},
		&ucli.BoolFlag{Name: "keychain", Usage: "move the secret out of the keyfile into the OS keychain"},
	}
	for _, l := range (state.Key{}).Limits() {
		flags = append(flags, &ucli.IntFlag{Name: strings.ReplaceAll(l.Field, "_", "-"), Usage: "set " + l.Field + " to `N` " + limitZero(l.Field)})
	}
	for _, b := range (state.Key{}).Budgets() {
		flags = append(flags, &ucli.Float64Flag{Name: strings.ReplaceAll(b.Field, "_", "-"), Usage: "set " + b.Field + " to `DOLLARS` (0: no budget)"})
	}
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "set",
		Usage:     "change a key's limits, tags or secret in place",
		ArgsUsage: "PROVIDER/NAME",
		Description: "Rewrites only the lines of the fields that change; every other byte of the keyfile stays. " +
			"The daemon picks the change up within a moment.",
		Flags:        flags,
		BashComplete: completeKeyRefs,
		Action: func(c *ucli.Context) error {
			provider, name, p, err := keyRefArgs(c)
			if err != nil {
				return err
			}
			in := SetCommandInput{Keyfile: p.Keyfile, Provider: provider, Name: name, Limits: map[string]int{}, Secret: c.Bool("secret"), Force: c.Bool("force"), Keychain: c.Bool("keychain")}
			for _, l := range (state.Key{}).Limits() {
				if flag := strings.ReplaceAll(l.Field, "_", "-"); c.IsSet(flag) {
					in.Limits[l.Field] = c.Int(flag)
				}
			}
			in.Budgets = setBudgets(c)
			if c.IsSet("tag") {
				in.Tags = splitList(c.StringSlice("tag"))
			}
			if c.IsSet("models") {
				in.Models = splitList(c.StringSlice("models"))
			}
			if c.IsSet("group") {
				g := strings.TrimSpace(c.String("group"))
				in.Group = &g
			}
			return SetCommand(c.Context, in, streams(c))
		},
	})
}

// splitList is a repeatable list flag's values, commas split, empty
// ones dropped, never nil.
func splitList(vs []string) []string {
	out := []string{}
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// SetCommand changes one key in place.
func SetCommand(ctx context.Context, in SetCommandInput, s Streams) error {
	if len(in.Limits) == 0 && len(in.Budgets) == 0 && in.Tags == nil && in.Models == nil && in.Group == nil && !in.Secret && !in.Keychain {
		return usageError("give what to change, e.g. llmkey set "+in.Provider+"/"+in.Name+" --rpm 60 (see llmkey help set)", "set: nothing to change")
	}
	cfg, err := state.Load(in.Keyfile)
	if err != nil {
		return err
	}
	if cfg.Find(in.Provider, in.Name) < 0 {
		return cfg.KeyNotFound(in.Provider, in.Name)
	}
	if in.Group != nil && *in.Group != "" && !state.ValidName(*in.Group) {
		return usageError("use letters, digits, '.', '-' and '_' (at most 64)", "invalid group %q", *in.Group)
	}
	for f, v := range in.Limits {
		if v < 0 {
			hint := "use 0 for no limit"
			if f == "weight" {
				hint = "use 0 for the default weight, 1"
			}
			return usageError(hint, "--%s must not be negative", strings.ReplaceAll(f, "_", "-"))
		}
	}
	for f, v := range in.Budgets {
		if !(v >= 0) {
			return usageError("give dollars, e.g. 5 or 0.50; 0 for no budget", "--%s must be a number of dollars, not negative", strings.ReplaceAll(f, "_", "-"))
		}
	}
	secret := ""
	if in.Secret {
		prov, _ := cfg.Provider(in.Provider)
		if secret, err = readReplacement(s, in, prov.Kind); err != nil {
			return err
		}
	}
	before, after, err := state.SetKey(in.Keyfile, in.Provider, in.Name, in.edit(secret))
	if err != nil {
		return err
	}
	changed := limits(before) + " -> " + limits(after)
	if secret != "" {
		changed += fmt.Sprintf("; secret replaced (%s)", state.Mask(secret))
	}
	if after.Keychain && !before.Keychain {
		changed += "; the secret is in the keychain now, not in the keyfile"
	}
	s.done("changed %s/%s in %s: %s", in.Provider, in.Name, in.Keyfile, changed)
	return nil
}

// readReplacement reads the key's new secret, as add does.
func readReplacement(s Streams, in SetCommandInput, kind state.Kind) (string, error) {
	secret, err := readSecret(s.In, s.Err, fmt.Sprintf("new secret for %s/%s (input hidden): ", in.Provider, in.Name))
	if err != nil {
		return "", err
	}
	if secret == "" {
		return "", fail("type or pipe the new key", "no secret given; nothing changed")
	}
	if problem, hint := state.SecretProblem(in.Provider, kind, secret); problem != "" && !in.Force {
		return "", usageError(hint, "%s; nothing changed", problem)
	}
	return secret, nil
}

// edit is the change to the key: what in gives, and secret when it is
// not empty. A secret moved to the keychain is stored there first.
func (in SetCommandInput) edit(secret string) func(k *state.Key) error {
	return func(k *state.Key) error {
		for _, l := range k.Limits() {
			if v, ok := in.Limits[l.Field]; ok {
				k.SetLimit(l.Field, v)
			}
		}
		for f, v := range in.Budgets {
			k.SetBudget(f, v)
		}
		if in.Tags != nil {
			k.Tags = in.Tags
			if len(k.Tags) == 0 {
				k.Tags = nil
			}
		}
		if in.Group != nil {
			k.Group = *in.Group
		}
		if in.Models != nil {
			k.Models = in.Models
			if len(k.Models) == 0 {
				k.Models = nil
			}
		}
		if secret != "" {
			k.Secret = secret
			if k.Keychain || len(k.SecretCmd) > 0 && !in.Keychain {
				k.SecretCmd = nil // the new secret replaces the command
			}
		}
		if in.Keychain || (k.Keychain && secret != "") {
			return toKeychain(k)
		}
		return nil
	}
}

// toKeychain stores k's secret in the OS keychain, and leaves only
// keychain = true in the keyfile.
func toKeychain(k *state.Key) error {
	plain := k.Secret
	if plain == "" {
		return fmt.Errorf("%s has no secret in the keyfile to move (it comes from %s)", k.Ref(), map[bool]string{true: "the keychain", false: "secret_cmd"}[k.Keychain])
	}
	if err := secrets.Store(*k, plain); err != nil {
		return &Error{Err: err, Hint: hintOr(err, "unlock the keychain (on Linux, a Secret Service such as gnome-keyring must run)"), Code: ExitFailure}
	}
	k.Secret, k.SecretCmd, k.Keychain = "", nil, true
	return nil
}

// setBudgets are the dollar budgets set's flags give, by keyfile name.
func setBudgets(c *ucli.Context) map[string]float64 {
	out := map[string]float64{}
	for _, b := range (state.Key{}).Budgets() {
		if flag := strings.ReplaceAll(b.Field, "_", "-"); c.IsSet(flag) {
			out[b.Field] = c.Float64(flag)
		}
	}
	return out
}
