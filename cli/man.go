// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/man"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

//go:generate sh -c "cd .. && go run . man > man/llmkey.1"

func ConfigureManCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "man",
		Usage: "print the manual page (roff); read it with: llmkey man | man -l -",
		Description: "--install writes it to $XDG_DATA_HOME/man/man1/llmkey.1 (~/.local/share/man/man1/llmkey.1) for plain 'man llmkey', " +
			"and says whether man finds it there (man looks beside each directory of PATH, so it does when ~/.local/bin is on PATH) " +
			"or how to set MANPATH. The packages install it for every user; the source tree has it as man/llmkey.1.",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "install", Usage: "write the page into your own man directory, and say whether man finds it"}},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			if c.Bool("install") {
				return InstallManPage(c.Context, os.Getenv, streams(c))
			}
			_, err := fmt.Fprint(c.App.Writer, ManPage())
			return err
		},
	})
}

// InstallManPage writes the page where man looks for a user's own pages,
// and says whether man finds it there, as man itself answers.
func InstallManPage(ctx context.Context, getenv func(string) string, s Streams) error {
	data, err := userDir(getenv, "XDG_DATA_HOME", ".local/share")
	if err != nil {
		return err
	}
	dir := filepath.Join(data, "man")
	path := filepath.Join(dir, "man1", "llmkey.1")
	if err := writeUserFile(path, ManPage()); err != nil {
		return err
	}
	s.done("wrote %s", path)
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "man", "-w", "llmkey").Output()
	found := strings.TrimSpace(string(out))
	switch {
	case errors.Is(err, exec.ErrNotFound):
		s.done("man is not installed here; llmkey man | less reads the page")
	case err == nil && found == path:
		s.done("man llmkey reads it")
	case err == nil && found != "":
		s.done("man llmkey reads %s first (a package's, or an older copy); man %s reads this one", found, shellQuote(path))
	default:
		s.done("man does not look in %s: put this line in your shell's startup file (~/.bashrc, ~/.zshrc), then start a new shell:\n"+
			"  export MANPATH=%s\n(or put ~/.local/bin on PATH: man looks in ../share/man beside each directory of PATH)", dir, shellQuote(dir)+`:"$MANPATH"`)
	}
	return nil
}

// ManPage renders the manual from a fresh command tree.
func ManPage() string {
	return man.Render(NewApp(), manSections())
}

// ExampleKeyfile is the keyfile shown in the man page and docs/keyfile.md.
const ExampleKeyfile = `# ~/.config/llmkey/keys.toml (mode 0600)

[[key]]
provider = "openai"
name     = "work"
secret   = "sk-..."

[[key]]
provider = "openai"
name     = "personal"
secret   = "sk-..."
rpm      = 60              # optional per-key limits
max_concurrent = 4

[[key]]
provider = "anthropic"
name     = "work"
secret   = "sk-ant-..."
models   = ["claude-*"]    # only for these models

[daemon]                   # optional
listen   = "127.0.0.1:5565"
strategy = "round-robin"

[provider.local]           # a provider that is not built in
kind     = "openai"        # its wire format: openai, anthropic or gemini
base_url = "http://127.0.0.1:8000/v1"
`

// manSections are the man page's sections after the commands.
func manSections() []man.Section {
	return []man.Section{
		{Title: "Keyfile", Blocks: keyfileBlocks()},
		{Title: "Proxy errors", Blocks: proxyErrors()},
		{Title: "Files", Blocks: []man.Block{
			{Tag: "$XDG_CONFIG_HOME/llmkey/keys.toml", Text: "The keyfile (default ~/.config/llmkey/keys.toml), created 0600 in a 0700 directory."},
			{Tag: "$XDG_STATE_HOME/llmkey/", Text: "The state directory (default ~/.local/state/llmkey/): usage, token, logs. It never holds a raw secret."},
			{Tag: "$XDG_RUNTIME_DIR/llmkey/", Text: "The runtime directory (else $XDG_CACHE_HOME/llmkey/run/, by default ~/.cache/llmkey/run/; never a shared temp dir): socket, lock, pid. The CLI uses it only when it is a directory of the user's with mode 0700, and talks only to a daemon of the user's own uid."},
		}},
		{Title: "Environment", Blocks: []man.Block{
			{Tag: "LLMKEY_KEYFILE", Text: "The keyfile; the --keyfile option wins over it."},
			{Tag: "LLMKEY_STATE_DIR", Text: "The state directory."},
			{Tag: "LLMKEY_RUNTIME_DIR", Text: "The runtime directory."},
			{Tag: "XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_RUNTIME_DIR, XDG_CACHE_HOME, HOME", Text: "Used for the defaults above."},
		}},
		{Title: "Exit status", Blocks: exitStatus()},
		{Title: "Examples", Blocks: []man.Block{{Pre: allExamples()}}},
	}
}

// exitStatus lists the exit codes, from the table main maps errors by.
func exitStatus() []man.Block {
	var exits []man.Block
	for _, e := range ExitCodeDoc {
		exits = append(exits, man.Block{Tag: strconv.Itoa(e.Code), Text: capitalizeFirst(e.Meaning) + "."})
	}
	return append(exits, man.Block{Text: "Errors are printed to standard error as 'llmkey: message', followed by a 'hint:' line saying how to fix them."})
}

// keyfileBlocks describe the keyfile; the fields they list come from the
// schema.
func keyfileBlocks() []man.Block {
	var providers []string
	for _, n := range state.BuiltinNames() {
		p, _ := state.Builtin(n)
		providers = append(providers, fmt.Sprintf("%s (%s, %s)", n, p.Kind, p.BaseURL))
	}
	return []man.Block{
		{Text: "A TOML file with one [[key]] table per key. Built-in providers need no other table."},
		{Pre: ExampleKeyfile},
		{Tag: "[[key]]", Text: "provider and name (unique per provider; letters, digits, '.', '-', '_') are required, and the secret from " +
			"exactly one of secret, secret_cmd (a command's output: [\"pass\", \"show\", \"openai/work\"]) or keychain = true. " +
			"Optional: rpm, tpm, max_concurrent, rpd, tpd (0 or absent: no limit; rpd and tpd per UTC day), budget_usd_day and budget_usd_month (dollars a UTC day or month at the built-in and [pricing] prices; a key over one is limited until the period ends, and a model without a price counts $0), weight (for the weighted strategy), " +
			"models (names or globs this key may serve), tags (selections for exec --tag), organization and project (sent with this key only), " +
			"group (keys that share one organisation's quota: an organisation-wide rate limit on one cools them all, and a spent quota parks them all). " +
			"All of its fields: " + strings.Join(state.FieldNames("key"), ", ") + "."},
		{Tag: "[daemon]", Text: "listen (a loopback host:port; default " + state.DaemonDefault("listen") + "; \"127.0.0.1:0\" picks a free port), " +
			"strategy (" + quoteJoin(rotate.Strategies()) + "), allowed_origins (browser origins allowed to use the proxy), " +
			"client_timeout (how long a client may take to send its body, or leave a write of its answer waiting; default " + state.DaemonDefault("client_timeout") + "), " +
			"max_buffered_mb (request bodies, socket messages and demoted answers in memory, all together; default " + state.DaemonDefault("max_buffered_mb") + ": beyond it, 429 overloaded), " +
			"pace_below (a key whose rate-limit headers say less than this share of a limit is left gets requests only when no other key can take them, until the limit resets; default " + state.DaemonDefault("pace_below") + ", 0: off). " +
			"All of its settings: " + strings.Join(state.FieldNames("daemon"), ", ") + "."},
		{Text: "Every number has a largest value (rpm and max_concurrent 100000, weight 1000000, tpm, rpd and tpd 10^12, " +
			fmt.Sprintf("max_attempts %d, max_body_mb %d, max_in_flight %d, durations %d days); a larger one is an error that names the line.",
				state.MaxAttemptsLimit, state.MaxBodyMBLimit, state.MaxInFlightLimit, state.MaxDuration/(24*time.Hour))},
		{Tag: "[provider.NAME]", Text: "Overrides a built-in provider (base_url, strategy, timeouts) or defines a new one, which needs " +
			"kind (openai, anthropic or gemini) and base_url: the URL that provider's SDK would use as its base. " +
			"fallback = [\"openrouter\"] names providers of the same kind that serve a request no key of this one can, in order, once the request waited primary_wait (default " + state.FormatDuration(state.DefaultPrimaryWait) + ") for a key of its own; " +
			"fallback_models = { \"gpt-4o\" = \"openai/gpt-4o\" } renames models for them. A conversation whose state is stored with a key never falls over. " +
			"demote_to_stream = true (anthropic kind) sends non-streaming requests upstream as streams and answers the one JSON message they add up to, so that a long answer cannot meet a header timeout. " +
			"Its fields: " + strings.Join(state.FieldNames("provider"), ", ") + "."},
		{Tag: "[group.NAME]", Text: "Limits that the keys with group = NAME are held to together (per provider), as an organisation's limits hold all of its keys: " +
			strings.Join(state.FieldNames("group"), ", ") + ". A group without a table still cools together on an organisation-wide limit."},
		{Tag: "[pricing.\"MODEL\"]", Text: "Dollars per million tokens for a model or a pattern (\"gpt-4o-*\"), over the built-in prices (of " +
			state.BuiltinPricesAsOf + "): " + strings.Join(state.FieldNames("pricing"), ", ") + "."},
		{Text: "Built-in providers: " + strings.Join(providers, "; ") + "."},
		{Text: "Unknown fields, unknown providers, duplicate names, empty secrets and bad values are errors that name " +
			"the line. The keyfile must be readable by its owner only (chmod 600), as ssh requires of private keys. " +
			"add and rm change only the block they add or remove: comments, order and formatting of everything else " +
			"are kept byte for byte."},
	}
}

// allExamples are the commands' EXAMPLES, in the order of the commands.
func allExamples() string {
	var b strings.Builder
	for _, c := range NewApp().VisibleCommands() {
		for _, e := range examples[c.Name] {
			b.WriteString(e + "\n")
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// proxyErrors lists llmkey's own error answers, as X-Llmkey-Error says.
func proxyErrors() []man.Block {
	blocks := []man.Block{{Text: "Errors that llmkey gives itself, instead of the provider, carry X-Llmkey-Error and a body in " +
		"the provider's error shape; upstream errors pass through with secrets redacted."}}
	for _, e := range wire.CodeDoc {
		blocks = append(blocks, man.Block{Tag: string(e.Code), Text: e.Meaning})
	}
	return blocks
}

func quoteJoin(ss []rotate.Strategy) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

func capitalizeFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
