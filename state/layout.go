// SPDX-License-Identifier: MIT

package state

import "strings"

// The TOML decoder tells us what a keyfile means but not where anything is.
// layout is a small line scanner that tells where: which lines are table
// headers, which comments are attached to them, where each table's content
// ends, and on which line each key is set. It understands enough of TOML
// (quoted keys, multi-line strings and arrays, comments) to never mistake
// the inside of a value for a header. Validation uses it for line numbers;
// add and rm use it to find the exact bytes of one [[key]] block.

type lineKind int

const (
	lineBlank lineKind = iota
	lineComment
	lineHeader
	lineKeyVal
	lineContinuation // inside a value that started on an earlier line
)

type section struct {
	name   []string       // header key path; nil for the root table
	array  bool           // [[name]] rather than [name]
	header int            // 0-based line of the header; -1 for the root
	start  int            // first line, counting comments attached above the header
	end    int            // last non-blank line of its content (>= header)
	keys   map[string]int // first part of each key set in it -> 0-based line
	keyOrd []string       // those keys in file order
}

type layout struct {
	lines           []string // without their "\n"
	offsets         []int    // byte offset of each line's start
	kinds           []lineKind
	sections        []*section // sections[0] is the root table
	trailingNewline bool
}

func scanLayout(data []byte) *layout {
	text := string(data)
	l := &layout{trailingNewline: strings.HasSuffix(text, "\n")}
	for off := 0; off < len(text); {
		nl := strings.IndexByte(text[off:], '\n')
		l.offsets = append(l.offsets, off)
		if nl < 0 {
			l.lines = append(l.lines, text[off:])
			break
		}
		l.lines = append(l.lines, text[off:off+nl])
		off += nl + 1
	}
	l.classify()
	l.endSections()
	return l
}

// classify finds each line's kind, and the sections with their keys.
func (l *layout) classify() {
	root := &section{header: -1, start: 0, end: -1, keys: map[string]int{}}
	l.sections = []*section{root}
	cur := root
	var st valueState
	for i, raw := range l.lines {
		line := strings.TrimSuffix(raw, "\r")
		if st.open() {
			l.kinds = append(l.kinds, lineContinuation)
			st.scan(line)
			continue
		}
		trimmed := strings.TrimLeft(line, " \t")
		switch {
		case trimmed == "":
			l.kinds = append(l.kinds, lineBlank)
		case trimmed[0] == '#':
			l.kinds = append(l.kinds, lineComment)
		case trimmed[0] == '[':
			l.kinds = append(l.kinds, lineHeader)
			cur = l.header(i, trimmed)
			l.sections = append(l.sections, cur)
		default:
			l.kinds = append(l.kinds, lineKeyVal)
			path, rest := parseKeyPath(trimmed)
			if len(path) > 0 {
				if _, seen := cur.keys[path[0]]; !seen {
					cur.keys[path[0]] = i
					cur.keyOrd = append(cur.keyOrd, path[0])
				}
			}
			if eq := strings.IndexByte(rest, '='); eq >= 0 {
				st.scan(rest[eq+1:])
			}
		}
	}
}

// header is the section a header line at i begins, with the comment
// lines directly above it, which describe it.
func (l *layout) header(i int, trimmed string) *section {
	array := strings.HasPrefix(trimmed, "[[")
	inner := strings.TrimPrefix(trimmed, "[")
	if array {
		inner = inner[1:]
	}
	name, _ := parseKeyPath(inner)
	start := i
	for start > 0 && l.kinds[start-1] == lineComment {
		start--
	}
	return &section{name: name, array: array, header: i, start: start, end: i, keys: map[string]int{}}
}

// endSections ends each section's content at its last non-blank line
// before the next section's first line (its attached comments).
func (l *layout) endSections() {
	for si, s := range l.sections {
		limit := len(l.lines)
		if si+1 < len(l.sections) {
			limit = l.sections[si+1].start
		}
		s.end = s.header
		for j := limit - 1; j > s.header; j-- {
			if l.kinds[j] != lineBlank {
				s.end = j
				break
			}
		}
	}
}

// RootKey is a key that a TOML document's root table sets.
type RootKey struct {
	Path []string // as written: one part, or the parts of a dotted key
	Line int      // 0-based line where a key with its first part is first set
}

// RootKeys lists the keys a TOML document's root table sets, one per
// first part, in file order. It never mistakes the inside of a multi-line
// string or array for a key, nor a quoted key for another.
func RootKeys(data []byte) []RootKey {
	l := scanLayout(data)
	root := l.sections[0]
	out := make([]RootKey, 0, len(root.keyOrd))
	for _, k := range root.keyOrd {
		line := root.keys[k]
		path, _ := parseKeyPath(strings.TrimLeft(strings.TrimSuffix(l.lines[line], "\r"), " \t"))
		out = append(out, RootKey{Path: path, Line: line})
	}
	return out
}

// keyBlocks returns the [[key]] sections in file order.
func (l *layout) keyBlocks() []*section {
	var out []*section
	for _, s := range l.sections {
		if s.array && len(s.name) == 1 && s.name[0] == "key" {
			out = append(out, s)
		}
	}
	return out
}

// table returns the first section whose header is exactly name.
func (l *layout) table(name ...string) *section {
	for _, s := range l.sections {
		if equalPath(s.name, name) {
			return s
		}
	}
	return nil
}

func equalPath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lineEnd is the byte offset just past line i, its newline included.
func (l *layout) lineEnd(i int) int {
	if i+1 < len(l.offsets) {
		return l.offsets[i+1]
	}
	return l.offsets[i] + len(l.lines[i]) + boolInt(l.trailingNewline)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// valueState follows a value across lines: open multi-line strings and
// open brackets (multi-line arrays, and inline tables in TOML 1.1).
type valueState struct {
	mlBasic, mlLiteral bool
	depth              int
}

func (v *valueState) open() bool { return v.mlBasic || v.mlLiteral || v.depth > 0 }

// scan reads s, a value's text or its next line, and returns where a
// comment starts in it (-1: none).
func (v *valueState) scan(s string) int {
	for i := 0; i < len(s); i++ {
		switch {
		case v.mlBasic:
			if s[i] == '\\' {
				i++
			} else if strings.HasPrefix(s[i:], `"""`) {
				v.mlBasic = false
				i += 2
				for i+1 < len(s) && s[i+1] == '"' { // up to two quotes may close the string's content
					i++
				}
			}
		case v.mlLiteral:
			if strings.HasPrefix(s[i:], `'''`) {
				v.mlLiteral = false
				i += 2
				for i+1 < len(s) && s[i+1] == '\'' {
					i++
				}
			}
		case strings.HasPrefix(s[i:], `"""`):
			v.mlBasic = true
			i += 2
		case strings.HasPrefix(s[i:], `'''`):
			v.mlLiteral = true
			i += 2
		case s[i] == '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case s[i] == '\'':
			for i++; i < len(s) && s[i] != '\''; i++ {
			}
		case s[i] == '[' || s[i] == '{':
			v.depth++
		case s[i] == ']' || s[i] == '}':
			if v.depth > 0 {
				v.depth--
			}
		case s[i] == '#':
			return i
		}
	}
	return -1
}

// trailingComment is the comment that ends line i, a key = value line
// whose value is all on it, with the blanks before it ("  # work"); ""
// when it has none.
func (l *layout) trailingComment(i int) string {
	if i+1 < len(l.lines) && l.kinds[i+1] == lineContinuation {
		return ""
	}
	_, rest := parseKeyPath(strings.TrimLeft(strings.TrimSuffix(l.lines[i], "\r"), " \t"))
	eq := strings.IndexByte(rest, '=')
	if eq < 0 {
		return ""
	}
	val := rest[eq+1:]
	var st valueState
	at := st.scan(val)
	if at < 0 {
		return ""
	}
	for at > 0 && (val[at-1] == ' ' || val[at-1] == '\t') {
		at--
	}
	return val[at:]
}

// parseKeyPath reads a dotted TOML key (bare, "basic" or 'literal' parts)
// from the start of s and returns its parts and what follows it.
func parseKeyPath(s string) ([]string, string) {
	var parts []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return parts, s
		}
		var part string
		switch s[0] {
		case '"':
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			part, s = b.String(), s[min(i+1, len(s)):]
		case '\'':
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return parts, ""
			}
			part, s = s[1:1+end], s[2+end:]
		default:
			i := 0
			for i < len(s) && isBareKeyChar(s[i]) {
				i++
			}
			if i == 0 {
				return parts, s
			}
			part, s = s[:i], s[i:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return parts, s
		}
		s = s[1:]
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
