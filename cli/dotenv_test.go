// SPDX-License-Identifier: MIT

package cli

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

// A .env file reads as the dotenv libraries read it.
func TestParseDotenv(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"A=plain\n", map[string]string{"A": "plain"}},
		{"export A=x\nexport\tB = y \n", map[string]string{"A": "x", "B": "y"}},
		{"A=\"sk-x\" # a comment\n", map[string]string{"A": "sk-x"}},
		{"A='sk-x'   # a comment\n", map[string]string{"A": "sk-x"}},
		{"A=sk-x # a comment\nB=sk-y#not-a-comment\nC=sk-z\t# tab\n", map[string]string{"A": "sk-x", "B": "sk-y#not-a-comment", "C": "sk-z"}},
		{`A="a\nb\t\"q\" \\ \$ \x"` + "\n", map[string]string{"A": "a\nb\t\"q\" \\ $ \\x"}},
		{"A='a\\nb \"q\"'\n", map[string]string{"A": `a\nb "q"`}},
		{"A=\"one\ntwo\"\nB=`three\nfour`\nC=after\n", map[string]string{"A": "one\ntwo", "B": "three\nfour", "C": "after"}},
		{"# comment\n\n   \nA=\nB=\"\"\n", map[string]string{"A": "", "B": ""}},
		{"A=x\r\nB=\"y\"\r\n", map[string]string{"A": "x", "B": "y"}},
		{"A=first\nA=second", map[string]string{"A": "second"}},
		{"A=${HOME}/x\n", map[string]string{"A": "${HOME}/x"}},
		{"BIG=" + strings.Repeat("x", 200_000) + "\nA=after\n", map[string]string{"BIG": strings.Repeat("x", 200_000), "A": "after"}},
	}
	for _, tt := range tests {
		got, problems := parseDotenv(tt.in)
		if !maps.Equal(got, tt.want) || len(problems) > 0 {
			t.Errorf("parseDotenv(%.60q) = %.200v %v, want %.200v", tt.in, got, problems, tt.want)
		}
	}
}

// A line that cannot be read is a problem with its number, which never
// shows the value; the lines after it are read.
func TestParseDotenvProblems(t *testing.T) {
	in := "A=ok\n= orphan\nB=\"sk-secret-unclosed\nC='x' trailing\nD sk-secret\nE=fine\n"
	got, problems := parseDotenv(in)
	if !maps.Equal(got, map[string]string{"A": "ok", "E": "fine"}) {
		t.Errorf("vars: %v", got)
	}
	want := []string{"2: not a NAME=value line", `3: B: the closing " is missing`, "4: C: something other than a comment after the closing '", "5: D: no = after the name"}
	var said []string
	for _, p := range problems {
		said = append(said, fmt.Sprintf("%d: %s", p.line, p.msg))
		if strings.Contains(p.msg, "secret") {
			t.Errorf("a problem shows the line: %v", p)
		}
	}
	if strings.Join(said, "|") != strings.Join(want, "|") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(said, "\n"), strings.Join(want, "\n"))
	}
}
