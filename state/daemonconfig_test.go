// SPDX-License-Identifier: MIT

package state

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/rotate"
)

// Every [daemon] setting but allowed_origins has a default, and it is
// what the setting's accessor gives for a keyfile that leaves it out.
func TestDaemonDefaults(t *testing.T) {
	for _, f := range FieldNames("daemon") {
		if got := DaemonDefault(f); (got == "") != (f == "allowed_origins") {
			t.Errorf("DaemonDefault(%q) = %q", f, got)
		}
	}
	var d DaemonConfig
	for _, c := range []struct {
		got  any
		want any
	}{
		{d.HeaderTimeout(), DefaultResponseHeaderTimeout}, {d.IdleTimeout(), DefaultStreamIdleTimeout},
		{d.DrainWait(), DefaultDrainTimeout}, {d.ClientWait(), DefaultClientTimeout}, {d.WaitLimit(), DefaultMaxWait},
		{d.Attempts(), DefaultMaxAttempts}, {d.RetryWindow(), DefaultRetryDeadline}, {d.BodyLimit(), int64(DefaultMaxBodyMB) << 20},
		{d.InFlightLimit(), DefaultMaxInFlight}, {d.SocketLimit(), DefaultMaxWebSockets}, {d.BufferedLimit(), int64(DefaultMaxBufferedMB) << 20},
		{d.ProbeAfter(), DefaultProbeInterval}, {d.AddStreamUsage(), true}, {d.PaceShare(), DefaultPaceBelow},
		{(&Config{}).Listen(), DefaultListen}, {mustProvider(t, &Config{}, "openai").Strategy, rotate.DefaultStrategy},
	} {
		if c.got != c.want {
			t.Errorf("a setting left out is %v, want its default %v", c.got, c.want)
		}
	}
	// A setting given is the setting, even a zero where zero means
	// something (max_wait = "0s": never wait; pace_below = 0: no pacing).
	cfg, err := Parse("k.toml", []byte("[daemon]\nmax_wait = \"0s\"\npace_below = 0.0\nstream_usage = false\nclient_timeout = \"3s\"\nmax_attempts = 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Daemon; d.WaitLimit() != 0 || d.PaceShare() != 0 || d.AddStreamUsage() || d.ClientWait() != 3*time.Second || d.Attempts() != 2 {
		t.Errorf("settings given: %+v", d)
	}
	for d, want := range map[time.Duration]string{time.Minute: "1m", 30 * time.Second: "30s", 90 * time.Minute: "1h30m", 2 * time.Hour: "2h", 1500 * time.Millisecond: "1.5s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func mustProvider(t *testing.T, c *Config, name string) Provider {
	p, ok := c.Provider(name)
	if !ok {
		t.Fatalf("no provider %s", name)
	}
	return p
}

// The keyfile's documented table (docs/keyfile.md) says each setting's default as the code has
// it, and says one for every setting that has one.
func TestDocumentedDefaults(t *testing.T) {
	said := regexp.MustCompile("default `([^`]*)`")
	defaults := map[string]func(string) string{
		"daemon":   DaemonDefault,
		"provider": func(f string) string { return map[string]string{"primary_wait": FormatDuration(DefaultPrimaryWait)}[f] },
	}
	for _, r := range readmeRows(t) {
		def, ok := defaults[r.table]
		if !ok {
			continue
		}
		m := said.FindStringSubmatch(r.meaning)
		for _, f := range r.fields {
			switch want := def(f); {
			case want == "" && m != nil:
				t.Errorf("docs/keyfile.md: %s's %s has default `%s`; the code has none", r.table, f, m[1])
			case want != "" && m == nil:
				t.Errorf("docs/keyfile.md: %s's %s does not say its default, %s", r.table, f, want)
			case want != "" && m[1] != want:
				t.Errorf("docs/keyfile.md: %s's %s has default `%s`; the code's is %s", r.table, f, m[1], want)
			}
		}
	}
}

// rawReads are the places, outside this package, that read a [daemon]
// setting without its accessor: a Duration's Or, or a field of
// DaemonConfig that has a default. Such a read of a setting the keyfile
// leaves out gets a zero: a zero timeout, no attempts.
func rawReads(t *testing.T) map[string][]string {
	defaulted := map[string]bool{}
	dt := reflect.TypeFor[DaemonConfig]()
	for i := range dt.NumField() {
		// The zero of these is what they mean when left out.
		name := dt.Field(i).Name
		defaulted[name] = name != "AllowedOrigins" && name != "LogRequests"
	}
	out := map[string][]string{}
	eachSource(t, func(file string, fset *token.FileSet, f *ast.File) {
		for _, pos := range rawReadsIn(f, defaulted) {
			if at := fset.Position(pos); !slices.Contains(out[file], fmt.Sprintf("%s:%d", file, at.Line)) {
				out[file] = append(out[file], fmt.Sprintf("%s:%d", file, at.Line))
			}
		}
	})
	return out
}

// eachSource parses each non-test Go file of the module outside this
// package, named by its path in the module.
func eachSource(t *testing.T, do func(file string, fset *token.FileSet, f *ast.File)) {
	t.Helper()
	root := ".."
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if e.IsDir() && (rel == "state" || rel != "." && strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		do(filepath.ToSlash(rel), fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rawReadsIn finds them in one file: X.or(...), and X.F for a defaulted
// field F where X is some .Daemon, or a variable set from one; each
// read's position.
func rawReadsIn(f *ast.File, defaulted map[string]bool) []token.Pos {
	isDaemon := func(e ast.Expr) bool {
		s, ok := e.(*ast.SelectorExpr)
		return ok && s.Sel.Name == "Daemon"
	}
	vars := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if a, ok := n.(*ast.AssignStmt); ok && len(a.Lhs) == len(a.Rhs) {
			for i, r := range a.Rhs {
				if id, ok := a.Lhs[i].(*ast.Ident); ok && isDaemon(r) {
					vars[id.Name] = true
				}
			}
		}
		return true
	})
	lines := map[token.Pos]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "Or" {
				lines[s.Sel.Pos()] = true
			}
		}
		if s, ok := n.(*ast.SelectorExpr); ok && defaulted[s.Sel.Name] {
			if id, ok := s.X.(*ast.Ident); isDaemon(s.X) || ok && vars[id.Name] {
				lines[s.Sel.Pos()] = true
			}
		}
		return true
	})
	return slices.Sorted(maps.Keys(lines))
}

// Outside this package, a [daemon] setting is read through its accessor,
// which puts in the default: never its raw field (Duration's or, which
// would put one in, is unexported).
func TestSettingsReadThroughAccessors(t *testing.T) {
	for file, at := range rawReads(t) {
		t.Errorf("%s reads a [daemon] setting without its accessor (Attempts, RetryWindow, ClientWait, ...), which puts in the default:\n\t%s",
			file, strings.Join(at, "\n\t"))
	}
	// The finder finds what it looks for.
	src := "package p\nfunc f() {\n\tdc := cfg.Daemon\n\t_ = dc.RetryDeadline.Or(1)\n\t_ = s.Config.Daemon.MaxAttempts\n\t_ = dc.LogRequests\n\t_ = p.ProbeInterval\n\t_ = dc.Attempts()\n}\n"
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	defaulted := map[string]bool{"RetryDeadline": true, "MaxAttempts": true, "ProbeInterval": true}
	if got := rawReadsIn(f, defaulted); len(got) != 3 {
		t.Errorf("found %d raw reads, want 3 (RetryDeadline, its Or, MaxAttempts)", len(got))
	}
}
