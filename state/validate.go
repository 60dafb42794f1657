// SPDX-License-Identifier: MIT

package state

import (
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmkey/llmkey/rotate"
)

// validate checks what decoding cannot: values, names and references
// between tables. It stops at the first problem; the tables are checked
// in a fixed order (providers first: keys and fallbacks refer to them),
// each by sorted name, so that of several problems the same one is
// always named first.
func validate(c *Config, lay *layout) error {
	v := &validator{c: c, lay: lay, providers: slices.Sorted(maps.Keys(c.Providers))}
	for _, check := range []func() error{v.providerTables, v.daemon, v.pricing, v.groups, v.keys} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

type validator struct {
	c         *Config
	lay       *layout
	providers []string // the [provider.NAME] tables, sorted
}

// place is one table of the keyfile, where its errors point.
type place struct {
	path string   // the keyfile, for messages
	sec  *section // nil when the layout cannot tell where the table is
	name string   // "daemon", "provider.openai", "key[2]"
}

func (v *validator) place(name string, sec *section) place {
	return place{path: v.c.Path, sec: sec, name: name}
}

// bad is a problem with one field of the table ("" for the table as a
// whole), on the field's line, else the table's header.
func (p place) bad(field, msg, hint string) error {
	name, line := p.name, 0
	if field != "" {
		name += "." + field
	}
	if p.sec != nil {
		line = p.sec.header + 1
		if ln, ok := p.sec.keys[field]; ok {
			line = ln + 1
		}
	}
	return &KeyfileError{Path: p.path, Line: line, Field: name, Msg: msg, Hint: hint}
}

// tooLong refuses a duration the daemon does not take.
func (p place) tooLong(field string, d Duration) error {
	if time.Duration(d) > MaxDuration {
		return p.bad(field, fmt.Sprintf("%s is longer than llmkey takes (at most %s)", time.Duration(d), MaxDuration), "leave it out for the default")
	}
	return nil
}

func (p place) strategy(s rotate.Strategy) error {
	if s != "" && !s.Valid() {
		return p.bad("strategy", fmt.Sprintf("unknown strategy %q", s), "strategy is one of "+quoteList(rotate.Strategies()))
	}
	return nil
}

// limits refuses a key's or a group's number out of its range.
func (p place) limits(ls []Limit) error {
	for _, l := range ls {
		if l.Value < 0 {
			return p.bad(l.Field, "must not be negative", "use 0 (or leave it out) for no limit")
		}
		if l.Value > l.Max {
			return p.bad(l.Field, fmt.Sprintf("%d is more than llmkey takes (at most %d)", l.Value, l.Max), "use 0 (or leave it out) for no limit")
		}
	}
	return nil
}

func (p place) budgets(bs []Budget) error {
	for _, b := range bs {
		switch {
		case math.IsNaN(b.Value) || b.Value < 0:
			return p.bad(b.Field, "must be a number of dollars, not negative", "use 0 (or leave it out) for no budget, e.g. "+b.Field+" = 5")
		case b.Value > b.Max:
			return p.bad(b.Field, fmt.Sprintf("%g is more than llmkey takes (at most %g)", b.Value, b.Max), "use 0 (or leave it out) for no budget")
		}
	}
	return nil
}

// unknownProviderHint is the hint for a provider name that names none, with
// the closest one there is.
func (v *validator) unknownProviderHint(name, hint string) string {
	if s := closest(name, append(BuiltinNames(), v.providers...)); s != "" {
		return fmt.Sprintf("did you mean %q? %s", s, hint)
	}
	return hint
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func quoteList[S ~string](xs []S) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(string(x))
	}
	return strings.Join(q, ", ")
}

// [provider.NAME]

func (v *validator) providerTables() error {
	for _, n := range v.providers {
		if err := v.provider(n, v.c.Providers[n], v.place("provider."+n, v.lay.table("provider", n))); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) provider(n string, p ProviderConfig, at place) error {
	if !providerRe().MatchString(n) {
		return at.bad("", "invalid provider name", "use lower-case letters, digits, '-' and '_' (it becomes part of the proxy URL)")
	}
	kind, err := providerKind(n, p, at)
	if err != nil {
		return err
	}
	if p.BaseURL != "" {
		if err := checkBaseURL(p.BaseURL); err != nil {
			return at.bad("base_url", err.Error(), `use an absolute http(s) URL without query, e.g. "https://api.example.com/v1"`)
		}
	}
	if err := at.tooLong("response_header_timeout", p.ResponseHeaderTimeout); err != nil {
		return err
	}
	if err := at.tooLong("stream_idle_timeout", p.StreamIdleTimeout); err != nil {
		return err
	}
	if err := at.strategy(p.Strategy); err != nil {
		return err
	}
	if p.PrimaryWait != nil {
		if err := at.tooLong("primary_wait", *p.PrimaryWait); err != nil {
			return err
		}
	}
	if p.DemoteToStream && kind != KindAnthropic {
		return at.bad("demote_to_stream", fmt.Sprintf("only an anthropic-kind provider can be demoted to streaming; %s is of kind %q", n, kind),
			"remove demote_to_stream from this table")
	}
	return v.fallbacks(n, kind, p, at)
}

// providerKind checks a provider's kind and whether it needs a base_url,
// and returns its kind: its own, or its built-in's.
func providerKind(n string, p ProviderConfig, at place) (Kind, error) {
	b, builtin := builtins[n]
	switch {
	case p.Kind != "" && !p.Kind.Valid():
		return "", at.bad("kind", fmt.Sprintf("unknown kind %q", p.Kind), `kind is one of "openai", "anthropic", "gemini" (the provider's wire format)`)
	case builtin && p.Kind != "" && p.Kind != b.Kind:
		return "", at.bad("kind", fmt.Sprintf("%s is a built-in provider of kind %q", n, b.Kind),
			fmt.Sprintf("remove kind, or define a provider under another name with kind = %q", p.Kind))
	case !builtin && p.Kind == "":
		hint := `a new provider needs kind = "openai" | "anthropic" | "gemini" and base_url`
		if s := closest(n, BuiltinNames()); s != "" {
			hint = fmt.Sprintf("did you mean the built-in %q? otherwise %s", s, hint)
		}
		return "", at.bad("kind", "missing kind for a provider that is not built in", hint)
	case !builtin && p.BaseURL == "":
		return "", at.bad("base_url", "missing base_url for a provider that is not built in",
			`set base_url to the URL its SDK would use, e.g. "https://api.example.com/v1"`)
	}
	if p.Kind != "" {
		return p.Kind, nil
	}
	return b.Kind, nil
}

func (v *validator) fallbacks(n string, kind Kind, p ProviderConfig, at place) error {
	for i, f := range p.Fallback {
		fp, ok := v.c.Provider(f)
		switch {
		case !ok:
			return at.bad("fallback", fmt.Sprintf("unknown provider %q", f),
				v.unknownProviderHint(f, "name a built-in provider or one defined in a [provider.NAME] table"))
		case f == n:
			return at.bad("fallback", n+" cannot be its own fallback", "name another provider of kind "+string(kind))
		case fp.Kind != kind:
			return at.bad("fallback", fmt.Sprintf("%s is of kind %q, %s of kind %q: a fallback must speak the same wire format", f, fp.Kind, n, kind),
				"name a provider of kind "+string(kind))
		case slices.Contains(p.Fallback[:i], f):
			return at.bad("fallback", fmt.Sprintf("%s is named twice", f), "name each fallback once")
		}
	}
	for from, to := range p.FallbackModels {
		if from == "" || to == "" || strings.IndexFunc(from+to, isSpaceOrControl) >= 0 {
			return at.bad("fallback_models", fmt.Sprintf("bad model mapping %q = %q", from, to), `map model names, e.g. fallback_models = { "gpt-4o" = "openai/gpt-4o" }`)
		}
	}
	if len(p.FallbackModels) > 0 && len(p.Fallback) == 0 {
		return at.bad("fallback_models", "fallback_models without fallback", `name the providers to fall over to: fallback = ["openrouter"]`)
	}
	return nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q", s)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not have a query, fragment or user info", s)
	}
	return nil
}

// [daemon]

func (v *validator) daemon() error {
	d, at := v.c.Daemon, v.place("daemon", v.lay.table("daemon"))
	if d.Listen != "" {
		if err := checkListen(d.Listen); err != nil {
			return at.bad("listen", err.Error(), `listen on loopback only, e.g. "127.0.0.1:5565" ("127.0.0.1:0" picks a free port)`)
		}
	}
	if err := at.strategy(d.Strategy); err != nil {
		return err
	}
	for _, f := range []struct {
		field  string
		v, max int
	}{{"max_attempts", d.MaxAttempts, MaxAttemptsLimit}, {"max_body_mb", d.MaxBodyMB, MaxBodyMBLimit}, {"max_in_flight", d.MaxInFlight, MaxInFlightLimit},
		{"max_buffered_mb", d.MaxBufferedMB, MaxBufferedMBLimit}, {"max_websockets", d.MaxWebSockets, MaxInFlightLimit}} {
		switch {
		case f.v < 0:
			return at.bad(f.field, "must not be negative", "leave it out for the default")
		case f.v > f.max:
			return at.bad(f.field, fmt.Sprintf("%d is more than llmkey takes (at most %d)", f.v, f.max), "leave it out for the default")
		}
	}
	maxWait := Duration(0)
	if d.MaxWait != nil {
		maxWait = *d.MaxWait
	}
	for _, f := range []struct {
		field string
		v     Duration
	}{{"response_header_timeout", d.ResponseHeaderTimeout}, {"stream_idle_timeout", d.StreamIdleTimeout}, {"drain_timeout", d.DrainTimeout},
		{"client_timeout", d.ClientTimeout}, {"retry_deadline", d.RetryDeadline}, {"probe_interval", d.ProbeInterval}, {"max_wait", maxWait}} {
		if err := at.tooLong(f.field, f.v); err != nil {
			return err
		}
	}
	if p := d.PaceBelow; p != nil && (*p < 0 || *p >= 1 || math.IsNaN(*p)) {
		return at.bad("pace_below", fmt.Sprintf("%g is not a share of a limit", *p), "give a number from 0 (no pacing) to below 1, e.g. pace_below = 0.1")
	}
	return nil
}

// checkListen accepts host:port where host is a loopback address or name.
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port", s)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address; the proxy must not be reachable from other machines", s)
	}
	return nil
}

// [pricing."MODEL"]

func (v *validator) pricing() error {
	for _, m := range slices.Sorted(maps.Keys(v.c.Pricing)) {
		p, at := v.c.Pricing[m], v.place("pricing."+m, v.lay.table("pricing", m))
		for _, f := range []struct {
			field string
			v     *float64
		}{{"input", p.Input}, {"output", p.Output}, {"cache_read", p.CacheRead}, {"cache_write", p.CacheWrite}} {
			msg := ""
			switch {
			case f.v == nil:
			case *f.v < 0:
				msg = "a price must not be negative"
			case *f.v > MaxPrice || math.IsNaN(*f.v):
				msg = fmt.Sprintf("a price must be a number from 0 to %g", float64(MaxPrice))
			}
			if msg != "" {
				return at.bad(f.field, msg, "prices are dollars per million tokens, e.g. input = 2.5")
			}
		}
		if _, err := path.Match(m, ""); err != nil {
			return at.bad("", "not a valid model pattern", `name a model, or a pattern like "gpt-4o-*"`)
		}
	}
	return nil
}

// [group.NAME]

func (v *validator) groups() error {
	for _, g := range slices.Sorted(maps.Keys(v.c.Groups)) {
		gc, at := v.c.Groups[g], v.place("group."+g, v.lay.table("group", g))
		if !slices.ContainsFunc(v.c.Keys, func(k Key) bool { return k.Group == g }) {
			return at.bad("", fmt.Sprintf("no key has group = %q", g), fmt.Sprintf("add group = %q to the keys of that organisation, or remove [group.%s]", g, g))
		}
		lim := Key{RPM: gc.RPM, TPM: gc.TPM, MaxConcurrent: gc.MaxConcurrent, RPD: gc.RPD, TPD: gc.TPD,
			BudgetUSDDay: gc.BudgetUSDDay, BudgetUSDMonth: gc.BudgetUSDMonth}
		if err := at.limits(lim.Limits()); err != nil {
			return err
		}
		if err := at.budgets(lim.Budgets()); err != nil {
			return err
		}
	}
	return nil
}

// [[key]]

func (v *validator) keys() error {
	blocks := v.lay.keyBlocks()
	seen := map[string]int{}
	for i, k := range v.c.Keys {
		var sec *section
		if len(blocks) == len(v.c.Keys) {
			sec = blocks[i]
		}
		at := v.place(fmt.Sprintf("key[%d]", i+1), sec)
		if err := v.key(k, at); err != nil {
			return err
		}
		if prev, dup := seen[k.Ref()]; dup {
			also := fmt.Sprintf("key[%d]", prev+1)
			if ln := v.c.KeyLine(prev); ln > 0 {
				also += fmt.Sprintf(" on line %d", ln)
			}
			return at.bad("name", fmt.Sprintf("duplicate key %s (also %s)", k.Ref(), also), "give each key of a provider its own name")
		}
		seen[k.Ref()] = i
	}
	return nil
}

func (v *validator) key(k Key, at place) error {
	if err := keySecret(k, at); err != nil {
		return err
	}
	if err := at.limits(k.Limits()); err != nil {
		return err
	}
	if err := at.budgets(k.Budgets()); err != nil {
		return err
	}
	if _, ok := v.c.Provider(k.Provider); !ok {
		hint := "built-in providers: " + strings.Join(BuiltinNames(), ", ") +
			fmt.Sprintf("; or define [provider.%s] with kind and base_url", k.Provider)
		return at.bad("provider", fmt.Sprintf("unknown provider %q", k.Provider), v.unknownProviderHint(k.Provider, hint))
	}
	for _, m := range k.Models {
		if _, err := path.Match(m, ""); err != nil || m == "" {
			return at.bad("models", fmt.Sprintf("bad model pattern %q", m), `use model names or globs such as "gpt-4o*"`)
		}
	}
	if k.Group != "" && !ValidName(k.Group) {
		return at.bad("group", fmt.Sprintf("invalid group %q", k.Group), "use letters, digits, '.', '-' and '_' (at most 64)")
	}
	for _, tag := range k.Tags {
		if !ValidName(tag) {
			return at.bad("tags", fmt.Sprintf("invalid tag %q", tag), "use letters, digits, '.', '-' and '_' (at most 64)")
		}
	}
	return nil
}

// keySecret checks what names a key and where its secret comes from.
func keySecret(k Key, at place) error {
	switch {
	case k.Provider == "":
		return at.bad("provider", "missing provider", `add provider = "openai" (or another provider) to this [[key]]`)
	case k.Name == "":
		return at.bad("name", "missing name", `add name = "work" (any name unique for this provider) to this [[key]]`)
	case !ValidName(k.Name):
		return at.bad("name", fmt.Sprintf("invalid name %q", k.Name), "use letters, digits, '.', '-' and '_' (at most 64)")
	case k.Secret == "" && len(k.SecretCmd) == 0 && !k.Keychain:
		return at.bad("secret", "missing or empty secret", "set secret (or secret_cmd = [...], or keychain = true), or add the key with: llmkey add "+k.Provider+" "+k.Name)
	case boolInt(k.Secret != "")+boolInt(len(k.SecretCmd) > 0)+boolInt(k.Keychain) > 1:
		return at.bad("secret", "more than one of secret, secret_cmd and keychain", "keep the one the secret comes from")
	case len(k.SecretCmd) > 0 && k.SecretCmd[0] == "":
		return at.bad("secret_cmd", "an empty command", `give the command as a list: secret_cmd = ["pass", "show", "openai/work"]`)
	case strings.IndexFunc(k.Secret, isSpaceOrControl) >= 0:
		return at.bad("secret", "secret contains spaces or control characters", "paste the key exactly as the provider issued it")
	}
	return nil
}
