package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

func TestPermuteArgs(t *testing.T) {
	app := NewApp()
	tests := []struct{ in, want string }{
		{"llmkey rm openai/work --force", "llmkey rm --force openai/work"},
		{"llmkey add openai work --rpm 60 --models a,b", "llmkey add --rpm 60 --models a,b openai work"},
		{"llmkey --keyfile k.toml add openai --rpm=5", "llmkey --keyfile k.toml add --rpm=5 openai"},
		{"llmkey add openai -- --weird-name", "llmkey add openai -- --weird-name"},
		{"llmkey list --json", "llmkey list --json"},
		{"llmkey nosuch a --b", "llmkey nosuch a --b"},
	}
	for _, tt := range tests {
		got := strings.Join(PermuteArgs(app, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("PermuteArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
