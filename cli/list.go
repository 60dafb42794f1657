// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// ListCommandInput is what "llmkey list" was asked to do.
type ListCommandInput struct {
	Keyfile string
	Paths   state.Paths
	JSON    bool
}

// listedKey is one row of "llmkey list", and one object of its --json.
type listedKey struct {
	Provider        string            `json:"provider"`
	Name            string            `json:"name"`
	MaskedSecret    string            `json:"masked_secret"`
	Fingerprint     string            `json:"fingerprint"`
	State           string            `json:"state"`
	Reason          string            `json:"reason,omitempty"`
	CooldownSeconds float64           `json:"cooldown_seconds"`
	Until           *time.Time        `json:"until,omitempty"`
	InFlight        int               `json:"in_flight"`
	RequestsToday   int               `json:"requests_today"`
	TokensToday     int               `json:"tokens_today"`
	RecentFailures  []control.Failure `json:"recent_failures"`
	RPM             int               `json:"rpm"`
	TPM             int               `json:"tpm"`
	MaxConcurrent   int               `json:"max_concurrent"`
	RPD             int               `json:"rpd"`
	TPD             int               `json:"tpd"`
	BudgetUSDDay    float64           `json:"budget_usd_day"`
	BudgetUSDMonth  float64           `json:"budget_usd_month"`
	Weight          int               `json:"weight"`
	Models          []string          `json:"models"`
	Tags            []string          `json:"tags"`
	SecretCmd       []string          `json:"secret_cmd,omitempty"` // where the secret comes from, if not the keyfile
	Keychain        bool              `json:"keychain,omitempty"`
	Organization    string            `json:"organization,omitempty"`
	Project         string            `json:"project,omitempty"`
	Group           string            `json:"group,omitempty"`

	limits string // for the table: "rpm=60 max_concurrent=4"
}

type listOutput struct {
	Keyfile string      `json:"keyfile"`
	Daemon  daemonBrief `json:"daemon"`
	Keys    []listedKey `json:"keys"`
}

type daemonBrief struct {
	Running bool `json:"running"`
	// Keyfile is the keyfile the running daemon serves.
	Keyfile string `json:"keyfile,omitempty"`
}

func ConfigureListCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:    "list",
		Aliases: []string{"ls"},
		Usage:   "list the keys with masked secrets, limits and live state",
		Description: "Works without the daemon. Secrets are shown masked (sk-…abcd): the provider's public prefix and " +
			"the last four characters. --json prints {keyfile, daemon: {running, keyfile}, keys: [...]} with the same fields; the daemon's keyfile is the one it serves.",
		Flags: append([]ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}}, tableFlags()...),
		Action: withPaths(func(c *ucli.Context, p state.Paths) error {
			return ListCommand(c.Context, ListCommandInput{Keyfile: p.Keyfile, Paths: p, JSON: c.Bool("json")}, streams(c))
		}),
	})
}

// ListCommand prints the keys of the keyfile.
func ListCommand(ctx context.Context, in ListCommandInput, s Streams) error {
	// A keyfile that is valid TOML but wrong (a key of an unknown
	// provider) is listed all the same, the problem said after the table.
	cfg, err := state.LoadAsWritten(in.Keyfile)
	missing := errors.Is(err, fs.ErrNotExist)
	if err != nil && (cfg == nil || in.JSON) && !missing {
		return err
	}
	invalid := err
	out := listOutput{Keyfile: in.Keyfile, Keys: []listedKey{}}
	var live liveKeys
	out.Daemon, live = liveState(ctx, in)
	// Without the daemon, today's counts come from the usage files.
	var today map[state.UsageKey]state.Counts
	if !out.Daemon.Running {
		if u, err := state.LoadUsageDir(in.Paths.StateDir); err == nil {
			today = state.KeyDay(u.Rows, state.Day(time.Now()))
		}
	}
	if cfg != nil {
		for _, k := range cfg.Keys {
			out.Keys = append(out.Keys, listKey(cfg, k, today, out.Daemon, live))
		}
	}

	if in.JSON {
		enc := json.NewEncoder(s.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(out.Keys) == 0 {
		where := in.Keyfile
		if missing {
			where += " (it does not exist yet)"
		}
		s.info("no keys in %s", where)
		io.WriteString(s.Err, "hint: add one: printf %s \"$KEY\" | llmkey add PROVIDER NAME\n")
		return nil
	}
	if err := printListed(s, out.Keys); err != nil {
		return err
	}
	return invalid // the keyfile's own error, with its line and hint
}

// liveKeys are the keys a running daemon serves, by
// PROVIDER/NAME@FINGERPRINT and by PROVIDER/NAME (for a secret this
// command does not read: keychain, secret_cmd).
type liveKeys struct {
	byFingerprint, byRef map[string]control.KeyStatus
	// other: the daemon serves another keyfile, so its state is not
	// these keys'.
	other bool
}

// liveState asks a running daemon for its keys' state; list never starts
// one.
func liveState(ctx context.Context, in ListCommandInput) (daemonBrief, liveKeys) {
	var d daemonBrief
	live := liveKeys{byFingerprint: map[string]control.KeyStatus{}, byRef: map[string]control.KeyStatus{}}
	st, err := control.NewClient(in.Paths).Status(ctx)
	if err != nil || !st.Running {
		return d, live
	}
	d.Running = true
	if st.Keyfile != nil {
		d.Keyfile = st.Keyfile.Path
		live.other = !samePath(st.Keyfile.Path, in.Keyfile)
	}
	for p, ps := range st.Providers {
		for _, k := range ps.Keys {
			live.byFingerprint[p+"/"+k.Name+"@"+k.Fingerprint] = k
			live.byRef[p+"/"+k.Name] = k
		}
	}
	return d, live
}

// listKey is k as list shows it: from the keyfile, with today's counts
// from the usage files, or the daemon's live state when it runs.
func listKey(cfg *state.Config, k state.Key, today map[state.UsageKey]state.Counts, d daemonBrief, live liveKeys) listedKey {
	models := k.Models
	if models == nil {
		models = []string{}
	}
	masked, fp := state.Mask(k.Secret), state.Fingerprint(k.Secret)
	switch {
	case k.Keychain:
		masked, fp = "(keychain)", ""
	case len(k.SecretCmd) > 0:
		masked, fp = "(secret_cmd)", ""
	}
	lk := listedKey{
		Provider: k.Provider, Name: k.Name, MaskedSecret: masked, Fingerprint: fp,
		State: "unknown", Reason: "daemon not running", RecentFailures: []control.Failure{},
		RPM: k.RPM, TPM: k.TPM, MaxConcurrent: k.MaxConcurrent, RPD: k.RPD, TPD: k.TPD, Weight: k.Weight, Models: models,
		BudgetUSDDay: k.BudgetUSDDay, BudgetUSDMonth: k.BudgetUSDMonth,
		Organization: k.Organization, Project: k.Project, Group: k.Group, Tags: append([]string{}, k.Tags...), SecretCmd: k.SecretCmd, Keychain: k.Keychain, limits: limits(k),
	}
	if c, ok := today[state.UsageKey{Provider: k.Provider, Key: k.Name, Fingerprint: lk.Fingerprint}]; ok {
		lk.RequestsToday, lk.TokensToday = int(c.Requests), int(c.Tokens())
	}
	switch {
	case d.Running && live.other:
		lk.Reason = "the daemon serves another keyfile (" + d.Keyfile + ")"
	case d.Running:
		live.apply(&lk, k.Ref())
	}
	if _, ok := cfg.Provider(k.Provider); !ok {
		lk.State, lk.Reason = "invalid", fmt.Sprintf("unknown provider %q: fix the keyfile", k.Provider)
	}
	return lk
}

// apply sets lk's state from the daemon's key ref, matched by its
// fingerprint, or by its name alone where this command did not read the
// secret (the daemon did).
func (live liveKeys) apply(lk *listedKey, ref string) {
	lk.State, lk.Reason = "unknown", "not loaded by the daemon yet"
	ks, ok := live.byFingerprint[ref+"@"+lk.Fingerprint]
	if lk.Fingerprint == "" {
		ks, ok = live.byRef[ref]
	}
	if !ok {
		return
	}
	if lk.Fingerprint == "" {
		lk.Fingerprint = ks.Fingerprint
	}
	lk.State, lk.Reason, lk.CooldownSeconds, lk.Until = ks.State, ks.Reason, ks.CooldownSeconds, ks.Until
	lk.InFlight, lk.RequestsToday, lk.TokensToday, lk.RecentFailures = ks.InFlight, ks.RequestsToday, ks.TokensToday, ks.Failures
}

// printListed prints the keys' table. One word per cell but the last, so
// that awk sees the columns; REQS and TOKENS are today's. A narrow
// terminal loses LIMITS first (see --wide), then cuts REASON, NAME and
// LIMITS.
func printListed(s Streams, keys []listedKey) error {
	t := &table{
		head:     []string{"PROVIDER", "NAME", "SECRET", "STATE", "WAIT", "REQS", "TOKENS", "LIMITS", "REASON"},
		right:    map[int]bool{4: true, 5: true, 6: true},
		shrink:   map[int]bool{1: true, 7: true, 8: true},
		optional: []int{7},
		color: func(_, col int, cell string) string {
			if col == 3 {
				return stateColor(cell)
			}
			return ""
		},
	}
	// The table groups by provider, in keyfile order within each: add
	// appends, so the file may interleave them. --json keeps file order.
	rows := slices.Clone(keys)
	slices.SortStableFunc(rows, func(a, b listedKey) int { return strings.Compare(a.Provider, b.Provider) })
	for _, k := range rows {
		t.add(k.Provider, termSafe(k.Name), k.MaskedSecret, k.State, wait(k.CooldownSeconds),
			strconv.Itoa(k.RequestsToday), strconv.Itoa(k.TokensToday), k.limits, termSafe(k.Reason))
	}
	return t.print(s.Out, s.Look)
}

// wait is how long a state lasts, for a table: "4m58s", or "-".
func wait(seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	return time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
}

// limits are a key's set numbers and models, in keyfile order.
func limits(k state.Key) string {
	var parts []string
	for _, l := range k.Limits() {
		if l.Value != 0 {
			parts = append(parts, l.Field+"="+strconv.Itoa(l.Value))
		}
	}
	for _, b := range k.Budgets() {
		if b.Value != 0 {
			parts = append(parts, b.Field+"="+strconv.FormatFloat(b.Value, 'f', -1, 64))
		}
	}
	if len(k.Models) > 0 {
		parts = append(parts, "models="+strings.Join(k.Models, ","))
	}
	if k.Group != "" {
		parts = append(parts, "group="+k.Group)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}
