// SPDX-License-Identifier: MIT

package state

import (
	"go/ast"
	"go/token"
	"testing"
)

// This package names the files of the state and runtime directories:
// no other package joins a name to either directory, or to a variable
// set from one.
func TestOnlyStateNamesItsFiles(t *testing.T) {
	dirOf := func(e ast.Expr) string {
		if s, ok := e.(*ast.SelectorExpr); ok && (s.Sel.Name == "StateDir" || s.Sel.Name == "RuntimeDir") {
			return s.Sel.Name
		}
		return ""
	}
	eachSource(t, func(file string, fset *token.FileSet, f *ast.File) {
		vars := map[string]string{}
		ast.Inspect(f, func(n ast.Node) bool {
			if a, ok := n.(*ast.AssignStmt); ok && len(a.Lhs) == len(a.Rhs) {
				for i, r := range a.Rhs {
					if id, ok := a.Lhs[i].(*ast.Ident); ok && dirOf(r) != "" {
						vars[id.Name] = dirOf(r)
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok || len(c.Args) < 2 {
				return true
			}
			if fn, ok := c.Fun.(*ast.SelectorExpr); !ok || fn.Sel.Name != "Join" {
				return true
			}
			dir := dirOf(c.Args[0])
			if id, ok := c.Args[0].(*ast.Ident); ok {
				dir = vars[id.Name]
			}
			if dir != "" {
				t.Errorf("%s:%d joins a file name to %s; name the file in package state (as TokenFile, DisabledFile, Paths.LockPath)",
					file, fset.Position(c.Pos()).Line, dir)
			}
			return true
		})
	})
}
