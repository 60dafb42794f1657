// SPDX-License-Identifier: MIT

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The README's "one place for each question" table stays true: every
// file it names is there, every function or type it names is declared in
// the files of its row, every test it names is a test of the repository,
// and a test file it names is the tests of a file of its row.
func TestOnePlaceForEachQuestionIsTrue(t *testing.T) {
	rows := onePlaceRows(t)
	tests := repositoryTests(t)
	for _, r := range rows {
		files, names := placeFiles(t, r.question, r.files)
		for _, name := range names {
			if !declaredIn(t, name, files) {
				t.Errorf("%q: %s is declared in none of %v", r.question, name, files)
			}
		}
		for _, tok := range backticked(r.tests) {
			switch {
			case strings.HasSuffix(tok, "_test.go"):
				if _, err := os.Stat(tok); err != nil {
					t.Errorf("%q: %v", r.question, err)
				}
				if !slices.Contains(files, strings.TrimSuffix(tok, "_test.go")+".go") {
					t.Errorf("%q: %s is not the tests of a file of the row (%v)", r.question, tok, files)
				}
			case strings.HasPrefix(tok, "Test") || strings.HasPrefix(tok, "Fuzz"):
				if !tests[tok] {
					t.Errorf("%q: no test %s in the repository", r.question, tok)
				}
			default:
				t.Errorf("%q: %q in the tests column is neither a test nor a test file", r.question, tok)
			}
		}
	}
}

type placeRow struct{ question, files, tests string }

// onePlaceRows are the rows of the table after "One place for each
// question:" in README.md.
func onePlaceRows(t *testing.T) []placeRow {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "One place for each question:\n")
	if !ok {
		t.Fatal(`README.md has no "One place for each question:" table`)
	}
	var rows []placeRow
	for _, line := range strings.Split(strings.TrimLeft(after, "\n"), "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Fatalf("README.md: a row that is not | question | file | tested by |: %q", line)
		}
		q := strings.TrimSpace(cells[0])
		if q == "question" || strings.HasPrefix(q, "---") {
			continue
		}
		rows = append(rows, placeRow{q, cells[1], cells[2]})
	}
	if len(rows) == 0 {
		t.Fatal("README.md: the one-place table has no rows")
	}
	return rows
}

var backtickRE = regexp.MustCompile("`([^`]+)`")

func backticked(s string) []string {
	var out []string
	for _, m := range backtickRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// placeFiles are the files a row's file cell names (a bare name is in the
// directory named before it in the cell), each checked to exist, and the
// other names in it: functions, methods and types.
func placeFiles(t *testing.T, question, cell string) (files, names []string) {
	dir := ""
	for _, tok := range backticked(cell) {
		switch {
		case strings.HasSuffix(tok, "/"):
			dir = tok
			if fi, err := os.Stat(tok); err != nil || !fi.IsDir() {
				t.Errorf("%q: no directory %s", question, tok)
			}
		case strings.HasSuffix(tok, ".go"):
			if !strings.Contains(tok, "/") {
				tok = dir + tok
			}
			if _, err := os.Stat(tok); err != nil {
				t.Errorf("%q: %v", question, err)
			}
			files = append(files, tok)
		default:
			names = append(names, tok)
		}
	}
	return files, names
}

// declaredIn reports whether name (F, Type.Method or pkg.Name) is
// declared in one of files.
func declaredIn(t *testing.T, name string, files []string) bool {
	ident := name[strings.LastIndex(name, ".")+1:]
	decl := regexp.MustCompile(`(?m)^(func (\([^)]*\) )?|type |var |const )` + regexp.QuoteMeta(ident) + `\b`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if decl.Match(b) {
			return true
		}
	}
	return false
}

// repositoryTests are the names of the tests and fuzz tests of every
// package.
func repositoryTests(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`(?m)^func ((Test|Fuzz)\w+)\(`)
	tests := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllSubmatch(b, -1) {
				tests[string(m[1])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tests
}
