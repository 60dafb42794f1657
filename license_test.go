// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// spdxLine names the licence in LICENSE, as the first line of every Go
// file (after the #! line of a script), so that a file copied out of the
// repository still says under which terms.
const spdxLine = "SPDX-License-Identifier: MIT"

// Every source file of the repository names LICENSE's licence, and
// LICENSE is that licence.
func TestEverySourceFileNamesTheLicence(t *testing.T) {
	lic, err := os.ReadFile("LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(lic), "MIT License\n") || !strings.Contains(string(lic), "Permission is hereby granted, free of charge") {
		t.Fatalf("LICENSE is not the MIT licence that the files name:\n%.200s", lic)
	}
	var missing []string
	checked := 0
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci" && d.Name() != ".github" || d.Name() == "dist" || d.Name() == "distfiles" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		comment := ""
		switch {
		case strings.HasSuffix(path, ".go"):
			comment = "// "
		case filepath.Dir(path) == ".ci":
			comment = "# "
		default:
			return nil
		}
		checked++
		if first := firstLines(t, path, 2); first[0] != comment+spdxLine && !(strings.HasPrefix(first[0], "#!") && first[1] == comment+spdxLine) {
			missing = append(missing, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d source files found: is the test run from the repository's root?", checked)
	}
	if len(missing) > 0 {
		t.Errorf("these files do not start with the line %q (after #! in a script), which names LICENSE's terms:\n  %s",
			"// "+spdxLine, strings.Join(missing, "\n  "))
	}
}

// firstLines are the first n lines of the file at path ("" past its end).
func firstLines(t *testing.T, path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := make([]string, n)
	sc := bufio.NewScanner(f)
	for i := 0; i < n && sc.Scan(); i++ {
		lines[i] = sc.Text()
	}
	return lines
}
