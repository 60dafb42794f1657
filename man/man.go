// SPDX-License-Identifier: MIT

// Package man renders llmkey's man page (section 1) from the command tree,
// so that the page cannot drift from the commands: man/llmkey.1 is this
// package's output, checked in, and a test fails when it is stale.
package man

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// Section is a man page section beyond what the command tree says.
type Section struct {
	Title  string
	Blocks []Block
}

// Block is one piece of a section: a paragraph (Text), a tagged paragraph
// (Tag and Text), or preformatted lines (Pre).
type Block struct {
	Tag, Text, Pre string
}

// Render returns the roff source of the page: NAME, SYNOPSIS, DESCRIPTION,
// GLOBAL OPTIONS and COMMANDS from app, then extra in order. The page
// carries no date or version, so the checked-in copy changes only when
// the text does.
func Render(app *ucli.App, extra []Section) string {
	var b strings.Builder
	name := app.Name
	fmt.Fprintf(&b, ".\\\" Generated from the command tree by \"%s man\"; do not edit.\n", name)
	fmt.Fprintf(&b, ".TH %s 1 \"\" \"%s\" \"User Commands\"\n", strings.ToUpper(name), name)
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", name, escape(app.Usage))
	b.WriteString(".SH SYNOPSIS\n")
	fmt.Fprintf(&b, "%s\n", escape(app.UsageText))
	if app.Description != "" {
		b.WriteString(".SH DESCRIPTION\n")
		fmt.Fprintf(&b, "%s\n", escape(app.Description))
	}
	if len(app.Flags) > 0 {
		b.WriteString(".SH GLOBAL OPTIONS\n")
		writeFlags(&b, app.Flags, nil)
	}
	b.WriteString(".SH COMMANDS\n")
	writeCommands(&b, app)
	for _, s := range extra {
		writeSection(&b, s)
	}
	return b.String()
}

// writeCommands writes a subsection for each visible command: its usage,
// aliases, description and options, but the global ones.
func writeCommands(b *strings.Builder, app *ucli.App) {
	global := map[string]bool{}
	for _, f := range app.Flags {
		global[f.Names()[0]] = true
	}
	for _, c := range app.Commands {
		if c.Hidden || c.Name == "help" {
			continue
		}
		writeCommand(b, app.Name+" "+c.Name, c, global)
		for _, sub := range c.Subcommands {
			if !sub.Hidden && sub.Name != "help" {
				writeCommand(b, app.Name+" "+c.Name+" "+sub.Name, sub, global)
			}
		}
	}
}

// writeSection writes one of the sections beyond the command tree.
func writeSection(b *strings.Builder, s Section) {
	fmt.Fprintf(b, ".SH %s\n", escape(strings.ToUpper(s.Title)))
	for i, bl := range s.Blocks {
		switch {
		case bl.Pre != "":
			b.WriteString(".PP\n.RS 4\n.nf\n")
			for _, line := range strings.Split(strings.TrimRight(bl.Pre, "\n"), "\n") {
				fmt.Fprintf(b, "%s\n", escape(line))
			}
			b.WriteString(".fi\n.RE\n")
		case bl.Tag != "":
			fmt.Fprintf(b, ".TP\n.B %s\n%s\n", escape(bl.Tag), escape(bl.Text))
		default:
			if i > 0 {
				b.WriteString(".PP\n")
			}
			fmt.Fprintf(b, "%s\n", escape(bl.Text))
		}
	}
}

func writeFlags(b *strings.Builder, flags []ucli.Flag, skip map[string]bool) {
	for _, f := range flags {
		names := f.Names()
		if skip[names[0]] {
			continue
		}
		doc, ok := f.(ucli.DocGenerationFlag)
		if !ok {
			continue
		}
		usage, placeholder := splitPlaceholder(doc.GetUsage())
		var spelled []string
		for _, n := range names {
			dash := "\\-\\-"
			if len(n) == 1 {
				dash = "\\-"
			}
			s := "\\fB" + dash + strings.ReplaceAll(escape(n), "-", "\\-") + "\\fR"
			if doc.TakesValue() {
				if placeholder == "" {
					placeholder = "value"
				}
				s += " \\fI" + escape(placeholder) + "\\fR"
			}
			spelled = append(spelled, s)
		}
		if env := doc.GetEnvVars(); len(env) > 0 {
			usage += " (environment: " + strings.Join(env, ", ") + ")"
		}
		fmt.Fprintf(b, ".TP\n%s\n%s\n", strings.Join(spelled, ", "), escape(usage))
	}
}

// splitPlaceholder takes urfave/cli's `NAME` placeholder out of a usage.
func splitPlaceholder(usage string) (string, string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return usage, ""
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return usage, ""
	}
	ph := usage[i+1 : i+1+j]
	return usage[:i] + ph + usage[i+2+j:], ph
}

// escape makes text safe for roff: backslashes, and control characters
// ('.' or '\”) at the start of a line.
func escape(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\e")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = "\\&" + l
		}
	}
	return strings.Join(lines, "\n")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// writeCommand is one command's subsection: its name (path: with the
// commands above it), usage, aliases, description and options.
func writeCommand(b *strings.Builder, path string, c *ucli.Command, global map[string]bool) {
	title := path
	if c.ArgsUsage != "" {
		title += " " + c.ArgsUsage
	}
	fmt.Fprintf(b, ".SS \"%s\"\n", escape(title))
	fmt.Fprintf(b, "%s.\n", escape(capitalize(c.Usage)))
	if len(c.Aliases) > 0 {
		fmt.Fprintf(b, "Also: %s.\n", escape(strings.Join(c.Aliases, ", ")))
	}
	if c.Description != "" {
		fmt.Fprintf(b, ".PP\n%s\n", escape(c.Description))
	}
	writeFlags(b, c.Flags, global)
}
