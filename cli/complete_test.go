// SPDX-License-Identifier: MIT

package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCompleteKnowsTheTree(t *testing.T) {
	kf := filepath.Join(t.TempDir(), "keys.toml")
	os.WriteFile(kf, []byte("[[key]]\nprovider = \"openai\"\nname = \"work\"\nsecret = \"sk-aaaaaaaaaaaaaaaaaaaaaaaa\"\ntags = [\"job\"]\n"), 0o600)
	t.Setenv("LLMKEY_KEYFILE", kf)
	app := NewApp()
	app.Setup()
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"us"}, "usage"},
		{[]string{"list", "--"}, "--json --wide --no-color --keyfile --help"},
		{[]string{"usage", "--by", ""}, "key model day provider label"},
		{[]string{"usage", "--by", "key,m"}, "key,model"},
		{[]string{"usage", "--by=d"}, "--by=day"},
		{[]string{"rm", ""}, "openai/work"},
		{[]string{"rm", "openai/work", ""}, ""},
		{[]string{"rename", "o"}, "openai/work"},
		{[]string{"rename", "openai/work", ""}, ""}, // the new name is the user's
		{[]string{"exec", "--tag", ""}, "job"},
		{[]string{"exec", "--key", "o"}, "openai/work"},
		{[]string{"env", "--shell", "f"}, "fish"},
		{[]string{"--keyfile", ""}, ":files"},
		{[]string{"exec", "--", ""}, ":files"},
		{[]string{"help", "lo"}, "logs"},
		{[]string{"nosuch", ""}, ""},
	} {
		got := strings.Join(Complete(app, c.words), " ")
		if got != c.want {
			t.Errorf("complete %q: %q, want %q", c.words, got, c.want)
		}
	}
	if slices.Contains(Complete(app, []string{""}), "__complete") {
		t.Error("the hidden __complete is offered")
	}
}
