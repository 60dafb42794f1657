// SPDX-License-Identifier: MIT

package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

var update = flag.Bool("update", false, "rewrite man/llmkey.1 from the command tree")

// TestManPageUpToDate fails when man/llmkey.1 no longer matches the
// command tree; regenerate with: go test ./cli -run TestManPage -update
func TestManPageUpToDate(t *testing.T) {
	got := ManPage()
	path := filepath.Join("..", "man", "llmkey.1")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Fatal("man/llmkey.1 is stale; regenerate it with: go test ./cli -run TestManPage -update")
	}
	for _, s := range []string{".TH LLMKEY 1", ".SH EXIT STATUS", ".SH KEYFILE", "LLMKEY_KEYFILE", `.SS "llmkey add PROVIDER [NAME]"`, `\fB\-\-max\-concurrent\fR \fIN\fR`} {
		if !strings.Contains(got, s) {
			t.Errorf("man page lacks %q", s)
		}
	}
}

// The man page names every field and setting the keyfile may have: the
// list comes from the schema, so that none can be missing.
func TestManMentionsEverySetting(t *testing.T) {
	page := strings.ReplaceAll(ManPage(), "\\-", "-")
	for _, table := range state.Tables() {
		for _, f := range state.FieldNames(table) {
			if !strings.Contains(page, f) {
				t.Errorf("the man page does not mention %s's %s", table, f)
			}
		}
	}
	for _, c := range NewApp().Commands {
		if !c.Hidden && !strings.Contains(page, `.SS "llmkey `+c.Name) {
			t.Errorf("the man page has no section for %s", c.Name)
		}
	}
}

// Every command's help has EXAMPLES, fits 80 columns, and says no
// "(default: false)" nor an option twice; the man page has the examples.
func TestHelpHasExamplesAndFits(t *testing.T) {
	app := NewApp()
	page := ManPage()
	for _, c := range app.VisibleCommands() {
		if c.Name == "help" {
			continue
		}
		var b strings.Builder
		app.Writer = &b
		if err := app.Run([]string{"llmkey", "help", c.Name}); err != nil {
			t.Fatal(err)
		}
		help := b.String()
		if !strings.Contains(help, "\nEXAMPLES:\n   llmkey") && !strings.Contains(help, "\nEXAMPLES:\n   ") {
			t.Errorf("help %s has no examples:\n%s", c.Name, help)
		}
		for _, l := range strings.Split(help, "\n") {
			if cellWidth(l) > 80 {
				t.Errorf("help %s: a line of %d columns: %q", c.Name, cellWidth(l), l)
			}
		}
		for _, bad := range []string{"(default: false)", "(default: 0s)", "[ --"} {
			if strings.Contains(help, bad) {
				t.Errorf("help %s says %q:\n%s", c.Name, bad, help)
			}
		}
		for _, e := range examples[c.Name] {
			if !strings.Contains(page, strings.ReplaceAll(strings.ReplaceAll(e, `\`, `\e`), "-", `\-`)) && !strings.Contains(page, e) {
				t.Errorf("the man page lacks the example %q", e)
			}
		}
	}
}
