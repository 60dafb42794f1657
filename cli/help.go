// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// examples are the EXAMPLES section of each command's help, and of the
// man page.
var examples = map[string][]string{
	"add": {
		"llmkey add openai work          # type the key; it is not echoed",
		`printf %s "$KEY" | llmkey add --rpm 60 openai personal`,
		"llmkey add --keychain --tag job anthropic work   # secret in the keychain",
	},
	"list":         {"llmkey list", "llmkey list --wide", "llmkey list --json | jq -r '.keys[] | .provider + \"/\" + .name'"},
	"rename":       {"llmkey rename openai/personal free-tier", "llmkey rename openai key1 work   # after import"},
	"rm":           {"llmkey rm openai/personal", "llmkey rm --force openai personal   # no question, for scripts"},
	"exec":         {"llmkey exec -- codex", "llmkey exec --tag work --label review -- python agent.py", "llmkey exec --key openai/personal --expires 8h -- claude"},
	"env":          {`eval "$(llmkey env)"`, "llmkey env --shell fish | source", "llmkey env --json"},
	"status":       {"llmkey status", "llmkey status -q; [ $? = 3 ] && llmkey start   # only when none runs", "llmkey status --json | jq '.providers'"},
	"usage":        {"llmkey usage --since today", "llmkey usage --by day --since 30d   # the trend, as bars", "llmkey usage --by key --chart", "llmkey usage --by day,key --json"},
	"enable":       {"llmkey enable openai/work"},
	"disable":      {"llmkey disable openai/work", "llmkey disable --for 1d openai personal"},
	"reset":        {"llmkey reset openai/work"},
	"daemon":       {"llmkey daemon   # in a systemd unit or a container: logs to stderr"},
	"start":        {"llmkey start"},
	"stop":         {"llmkey stop"},
	"restart":      {"llmkey restart   # after upgrading llmkey"},
	"reload":       {"llmkey reload   # after editing the keyfile by hand (the daemon also watches it)"},
	"setup":        {"llmkey setup codex", "llmkey setup --dry-run gemini", "llmkey setup --undo opencode"},
	"token":        {"llmkey token list", "llmkey token revoke 3f2a9c1e", "llmkey token prune --dry-run"},
	"token list":   {"llmkey token list", "llmkey token list --json | jq -r '.[] | select(.state == \"live\") | .id'"},
	"token revoke": {"llmkey token revoke 3f2a9c1e"},
	"token prune":  {"llmkey token prune --dry-run", "llmkey token prune"},
	"test":         {"llmkey test", "llmkey test openai/work || echo \"exit $?: see above\""},
	"set":          {"llmkey set --rpm 30 openai/work", "llmkey set --budget-usd-day 5 openai/personal", "llmkey set --tag work --tag ci openai/work", "llmkey set --secret openai/work   # type the new key"},
	"import":       {"llmkey import --from-env   # OPENAI_API_KEY, ANTHROPIC_API_KEY, ...", "llmkey import .env"},
	"doctor":       {"llmkey doctor"},
	"service":      {"llmkey service install", "llmkey service install --dry-run", "llmkey service status", "llmkey service uninstall"},
	"top":          {"llmkey top", "NO_COLOR=1 llmkey top"},
	"logs":         {"llmkey logs -n 50", "llmkey logs -f --level warn", "llmkey logs --key openai/work --since 1h", "llmkey logs --raw | grep class=rate-limited"},
	"man":          {"llmkey man | man -l -"},
	"completion":   {"source <(llmkey completion bash)", "source <(llmkey completion zsh)", "llmkey completion fish > ~/.config/fish/completions/llmkey.fish"},
	"version":      {"llmkey version", "llmkey --version"},
	"demo":         {"llmkey demo   # and the llmkey top line it prints, in a second terminal", "llmkey demo --pause 5s   # slower"},
}

var (
	// urfave/cli says a flag's default even when it is nothing to say.
	emptyDefault = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(` \(default: (false|0s|0|"")\)`) })
	// and names a repeatable option twice: "--tag TAG [ --tag TAG ]".
	repeated = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(` \[ --[a-z-]+( [A-Za-z_/]+)? \]`) })
	// hangAt finds where the text of an option or command line starts.
	hangAt = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^( +\S(?:\S| \S)*  +)\S`) })
)

func init() {
	stringer := ucli.FlagStringer
	ucli.FlagStringer = func(f ucli.Flag) string {
		return repeated().ReplaceAllString(emptyDefault().ReplaceAllString(stringer(f), ""), "")
	}
	plain := ucli.HelpPrinter
	ucli.HelpPrinter = func(w io.Writer, templ string, data any) {
		if _, ok := data.(*ucli.Command); ok {
			// A command's categories are set up only when it runs, so
			// "llmkey help service" would list no subcommands (llmkey
			// uses no categories).
			templ = strings.ReplaceAll(templ, `"visibleCommandCategoryTemplate"`, `"visibleCommandTemplate"`)
		}
		var b bytes.Buffer
		plain(&b, templ, data)
		s := b.String()
		if c, ok := data.(*ucli.Command); ok && len(examples[helpPath(c)]) > 0 {
			s = strings.TrimRight(s, "\n") + "\n\nEXAMPLES:\n"
			for _, e := range examples[helpPath(c)] {
				s += "   " + e + "\n"
			}
		}
		io.WriteString(w, fitHelp(s, helpWidth(w)))
	}
}

// helpPath is c's name under llmkey, with the commands above it: "token
// list" is not "list".
func helpPath(c *ucli.Command) string {
	if c.HelpName == "" {
		return c.Name
	}
	return strings.TrimPrefix(c.HelpName, "llmkey ")
}

// helpWidth is the terminal's width, or 80 when help is not on one.
func helpWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width >= 40 {
			return width
		}
	}
	return 80
}

// fitHelp wraps each line at spaces to width: a description under its own indent, an option's or
// command's text under where that text starts.
func fitHelp(s string, width int) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		text := strings.TrimRight(line, "\n")
		if cellWidth(text) <= width {
			b.WriteString(line)
			continue
		}
		hang := len(text) - len(strings.TrimLeft(text, " "))
		if m := hangAt().FindStringSubmatch(text); m != nil && len(m[1]) < width/2 {
			hang = len(m[1])
		}
		b.WriteString(wrap(text, width, hang))
	}
	return b.String()
}
