// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/cli"
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

// The README's exit codes are the code's (cli.ExitCodeDoc, which the
// man page prints too), row for row.
func TestREADMEExitCodes(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "\n## Errors and exit codes\n")
	if ok {
		_, after, ok = strings.Cut(after, "| code | meaning |\n| --- | --- |\n")
	}
	if !ok {
		t.Fatal("README.md has no exit code table under ## Errors and exit codes")
	}
	var rows []string
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "| ") {
			break
		}
		rows = append(rows, strings.ReplaceAll(line, "`", ""))
	}
	var want []string
	for _, e := range cli.ExitCodeDoc {
		want = append(want, fmt.Sprintf("| %d | %s |", e.Code, e.Meaning))
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("README's exit codes:\n%s\nthe code's:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// status exits as the README's table says: 0 with five keys ready, 1 once
// one of them is parked (a key that needs its owner, the others serving),
// and 3 with no daemon, so that `status -q; [ $? = 3 ] && llmkey start`
// starts one only when none runs.
func TestStatusExitsAsTheREADMESays(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	var secrets []string
	kf := "[daemon]\nlisten = \"127.0.0.1:0\"\nstrategy = \"fill-first\"\n\n[provider.openai]\nbase_url = \"" + fake.URL + "/v1\"\n"
	for i := range 5 {
		secrets = append(secrets, u.canary(fmt.Sprintf("sk-k%d-", i)))
		kf += fmt.Sprintf("\n[[key]]\nprovider = \"openai\"\nname = \"k%d\"\nsecret = %q\n", i, secrets[i])
	}
	writeFile(t, u.keyfile(), kf, 0o600)
	fake.on(secrets[0], answer(401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`))
	if _, code := u.status(); code != 3 {
		t.Fatalf("no daemon: status exit %d, want 3", code)
	}
	env := u.proxyEnv()
	if _, code := u.status(); code != 0 {
		t.Fatalf("five keys ready: status exit %d, want 0", code)
	}
	drain(t, chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil)) // k0 refuses it; k1 serves
	st, code := u.status()
	if code != 1 || !strings.Contains(fmt.Sprint(st["problems"]), "k0") {
		t.Errorf("one key of five parked: status exit %d, problems %v; want 1", code, st["problems"])
	}
	if r := u.run(nil, nil, "status", "-q"); r.code != 1 {
		t.Errorf("status -q with one key parked: exit %d, want 1 (not 3: a daemon runs)", r.code)
	}
}
