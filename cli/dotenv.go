// SPDX-License-Identifier: MIT

package cli

import (
	"fmt"
	"strings"
)

// A .env file is read as the dotenv libraries read one (python-dotenv,
// godotenv, Node's dotenv): NAME=value lines, an optional "export ",
// blank lines and # comment lines. A value is
//   - in double quotes: backslash escapes (\n \r \t \\ \" \' \$ \`), and it
//     may run over several lines;
//   - in single quotes or backquotes: taken as it is, over several lines;
//   - else the rest of the line, up to a # that follows white space, with
//     the white space around it trimmed.
// After a closing quote only white space and a comment may follow.
// Nothing is expanded: ${NAME} stays as written.

// dotenvProblem is a line that could not be read. It says what is wrong
// and never what the line holds, which may be a secret.
type dotenvProblem struct {
	line int
	msg  string
}

// parseDotenv reads a .env file's variables; a later one wins.
func parseDotenv(data string) (map[string]string, []dotenvProblem) {
	p := &dotenvParser{s: strings.ReplaceAll(data, "\r\n", "\n"), line: 1}
	vars := map[string]string{}
	var problems []dotenvProblem
	for p.i < len(p.s) {
		start, at := p.line, p.i
		name, value, msg := p.assignment()
		switch {
		case msg != "":
			problems = append(problems, dotenvProblem{start, msg})
			p.i, p.line = at, start // what follows is read afresh from the next line
			p.skipLine()
		case name != "":
			vars[name] = value
		}
	}
	return vars, problems
}

type dotenvParser struct {
	s    string
	i    int
	line int
}

func (p *dotenvParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *dotenvParser) skipBlanks() {
	for c := p.peek(); c == ' ' || c == '\t' || c == '\r'; c = p.peek() {
		p.i++
	}
}

// skipLine moves past the end of the line.
func (p *dotenvParser) skipLine() {
	for p.i < len(p.s) && p.s[p.i] != '\n' {
		p.i++
	}
	if p.i < len(p.s) {
		p.i++
		p.line++
	}
}

// assignment reads one line (more, for a quoted value that spans lines):
// a variable, nothing (a blank or comment line), or what is wrong.
func (p *dotenvParser) assignment() (name, value, problem string) {
	p.skipBlanks()
	if c := p.peek(); c == '#' || c == '\n' || c == 0 {
		p.skipLine()
		return "", "", ""
	}
	if rest := p.s[p.i:]; strings.HasPrefix(rest, "export ") || strings.HasPrefix(rest, "export\t") {
		p.i += len("export")
		p.skipBlanks()
	}
	start := p.i
	for c := p.peek(); c == '_' || c == '.' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && p.i > start; c = p.peek() {
		p.i++
	}
	name = p.s[start:p.i]
	if name == "" {
		return "", "", "not a NAME=value line"
	}
	p.skipBlanks()
	if p.peek() != '=' {
		return "", "", name + ": no = after the name"
	}
	p.i++
	p.skipBlanks()
	value, problem = p.value()
	if problem != "" {
		return "", "", name + ": " + problem
	}
	return name, value, ""
}

// value reads the value after "=", and the rest of its line.
func (p *dotenvParser) value() (string, string) {
	q := p.peek()
	if q != '"' && q != '\'' && q != '`' {
		end := strings.IndexByte(p.s[p.i:], '\n')
		if end < 0 {
			end = len(p.s) - p.i
		}
		v := p.s[p.i : p.i+end]
		if c := strings.Index(v, " #"); c >= 0 {
			v = v[:c]
		}
		if c := strings.Index(v, "\t#"); c >= 0 {
			v = v[:c]
		}
		p.i += end
		p.skipLine()
		return strings.Trim(v, " \t\r"), ""
	}
	p.i++
	v, ok := p.quoted(q)
	if !ok {
		return "", fmt.Sprintf("the closing %c is missing", q)
	}
	p.skipBlanks()
	if c := p.peek(); c != '#' && c != '\n' && c != 0 {
		return "", fmt.Sprintf("something other than a comment after the closing %c", q)
	}
	p.skipLine()
	return v, ""
}

// quoted reads up to the closing quote q, past it.
func (p *dotenvParser) quoted(q byte) (string, bool) {
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == q:
			return b.String(), true
		case c == '\n':
			p.line++
		case c == '\\' && q == '"' && p.i < len(p.s):
			e := p.s[p.i]
			p.i++
			switch e {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case '\\', '"', '\'', '$', '`':
				c = e
			default:
				b.WriteByte('\\')
				c = e
				if e == '\n' {
					p.line++
				}
			}
		}
		b.WriteByte(c)
	}
	return "", false
}
