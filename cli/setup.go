package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/wire/jsonscan"
	"github.com/llmkey/llmkey/state"
)

// SetupCommandInput is what "llmkey setup TOOL" was asked to do.
type SetupCommandInput struct {
	Paths  state.Paths
	Tool   string
	DryRun bool
	Undo   bool
	Getenv func(string) string
}

// tool is what one coding agent needs written into its own
// configuration so that a plain "llmkey exec -- TOOL" works.
type tool struct {
	name, what string
	// needsNothing says why the tool needs no setup; then the rest is nil.
	needsNothing string
	config       func(getenv func(string) string) (string, error)
	// apply returns the configuration with llmkey's part for proxyURL;
	// applied again it changes nothing.
	apply func(data []byte, proxyURL string) ([]byte, error)
	// check says what in the configuration keeps the tool off the proxy.
	check func(data []byte, proxyURL string) []finding
}

// finding is one trap doctor found, with its fix.
type finding struct{ problem, fix string }

var tools = []tool{
	{name: "codex", what: "Codex CLI", config: homeFile("CODEX_HOME", ".codex", "config.toml"), apply: applyCodex, check: checkCodex},
	{name: "gemini", what: "Gemini CLI", config: homeFile("GEMINI_CLI_HOME", ".gemini", "settings.json"), apply: applyGemini, check: checkGemini},
	{name: "opencode", what: "opencode", config: xdgFile("opencode", "opencode.json"), apply: applyOpencode, check: checkOpencode},
	{name: "claude", what: "Claude Code", needsNothing: "Claude Code reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY, which exec sets: 'llmkey exec -- claude' works as it is"},
}

func findTool(name string) (tool, bool) {
	for _, t := range tools {
		if t.name == name {
			return t, true
		}
	}
	return tool{}, false
}

func toolNames() []string {
	var out []string
	for _, t := range tools {
		out = append(out, t.name)
	}
	return out
}

// homeFile is DIR/FILE under $ENV, else under ~/HOMEDIR.
func homeFile(env, homeDir, file string) func(func(string) string) (string, error) {
	return func(getenv func(string) string) (string, error) {
		if d := getenv(env); d != "" {
			return filepath.Join(d, file), nil
		}
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, homeDir, file), nil
		}
		return "", errors.New("HOME is not set")
	}
}

// xdgFile is $XDG_CONFIG_HOME/DIR/FILE, else ~/.config/DIR/FILE.
func xdgFile(dir, file string) func(func(string) string) (string, error) {
	return func(getenv func(string) string) (string, error) {
		if d := getenv("XDG_CONFIG_HOME"); d != "" {
			return filepath.Join(d, dir, file), nil
		}
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, ".config", dir, file), nil
		}
		return "", errors.New("HOME is not set")
	}
}

func ConfigureSetupCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "setup",
		Usage:     "write what a coding agent's own configuration needs for 'llmkey exec -- TOOL'",
		ArgsUsage: "codex|gemini|opencode|claude",
		Description: "Edits the tool's configuration in place, as add edits the keyfile: every other byte is kept, running it " +
			"again changes nothing, and --undo puts the file back as it was, byte for byte. It writes the port the daemon " +
			"listens on now (starting it if needed); 'llmkey doctor' says when that port changed. codex: a model provider " +
			"\"llmkey\" in ~/.codex/config.toml (Responses over WebSocket, the key from OPENAI_API_KEY). gemini: the API-key " +
			"auth method in ~/.gemini/settings.json. opencode: the Google provider's base URL in ~/.config/opencode/opencode.json. " +
			"claude: nothing is needed.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "dry-run", Usage: "show the change, write nothing"},
			&ucli.BoolFlag{Name: "undo", Usage: "put the tool's file back as it was before setup"},
		},
		BashComplete: func(c *ucli.Context) {
			for _, n := range toolNames() {
				fmt.Fprintln(c.App.Writer, n)
			}
		},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 1, 1); err != nil {
				return err
			}
			p, err := resolvePaths(c)
			if err != nil {
				return err
			}
			return SetupCommand(c.Context, SetupCommandInput{Paths: p, Tool: c.Args().First(), DryRun: c.Bool("dry-run"), Undo: c.Bool("undo"), Getenv: os.Getenv}, streams(c))
		},
	})
}

// setupRecord is what setup wrote, kept in the state dir, so that --undo
// restores the file exactly.
type setupRecord struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	Before  []byte `json:"before"`
	After   []byte `json:"after"`
}

func setupRecordPath(p state.Paths, tool string) string {
	return state.SetupRecordFile(p.StateDir, tool)
}

// SetupCommand writes (or, with Undo, removes) llmkey's part of a tool's
// configuration.
func SetupCommand(ctx context.Context, in SetupCommandInput, s Streams) error {
	t, ok := findTool(in.Tool)
	if !ok {
		return usageError("llmkey setup knows "+strings.Join(toolNames(), ", "), "no setup for %q", in.Tool)
	}
	if t.needsNothing != "" {
		s.info("%s needs no setup: %s", t.what, t.needsNothing)
		return nil
	}
	path, err := t.config(in.Getenv)
	if err != nil {
		return fail("set HOME", "find %s's configuration: %v", t.what, err)
	}
	old, err := os.ReadFile(path)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail("check that "+path+" is yours and readable", "read %s: %v", path, err)
	}
	if in.Undo {
		return undoSetup(in, t, path, old, existed, s)
	}
	st, _, err := ensureDaemon(ctx, in.Paths)
	if err != nil {
		return err
	}
	updated, err := t.apply(old, st.ProxyURL)
	if err != nil {
		return fail("fix the file by hand, or move it aside and run setup again", "%s: %v", path, err)
	}
	if bytes.Equal(updated, old) && existed {
		s.done("%s is set up already (%s, proxy %s)", t.what, path, st.ProxyURL)
		return nil
	}
	if in.DryRun {
		fmt.Fprint(s.Out, lineDiff(path, old, updated))
		return nil
	}
	rec := setupRecord{Path: path, Existed: existed, Before: old, After: updated}
	if prev, err := readSetupRecord(in.Paths, t.name); err == nil && prev.Path == path {
		rec.Existed, rec.Before = prev.Existed, prev.Before // undo goes back to before the first setup
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := state.EnsurePrivateDir(filepath.Dir(setupRecordPath(in.Paths, t.name))); err != nil {
		return err
	}
	b, _ := json.Marshal(rec)
	if err := state.WriteAtomic(setupRecordPath(in.Paths, t.name), b, 0o600); err != nil {
		return err
	}
	perm := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := state.WriteAtomic(path, updated, perm); err != nil {
		return err
	}
	s.done("set up %s in %s for the proxy at %s", t.what, path, st.ProxyURL)
	fmt.Fprintf(s.Err, "next: llmkey exec -- %s ... (undo: llmkey setup %s --undo)\n", t.name, t.name)
	return nil
}

func readSetupRecord(p state.Paths, tool string) (setupRecord, error) {
	var rec setupRecord
	b, err := os.ReadFile(setupRecordPath(p, tool))
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(b, &rec)
}

func undoSetup(in SetupCommandInput, t tool, path string, cur []byte, existed bool, s Streams) error {
	rec, err := readSetupRecord(in.Paths, t.name)
	if err != nil || rec.Path != path {
		s.info("%s was not set up by llmkey here; nothing to undo", t.what)
		return nil
	}
	if !existed || !bytes.Equal(cur, rec.After) {
		return fail("remove llmkey's part by hand (see 'llmkey setup "+t.name+" --dry-run' for what it is)",
			"%s changed since llmkey setup %s; not putting the old one back over your edits", path, t.name)
	}
	if in.DryRun {
		fmt.Fprint(s.Out, lineDiff(path, cur, rec.Before))
		return nil
	}
	if rec.Existed {
		fi, _ := os.Stat(path)
		if err := state.WriteAtomic(path, rec.Before, fi.Mode().Perm()); err != nil {
			return err
		}
	} else if err := os.Remove(path); err != nil {
		return err
	}
	os.Remove(setupRecordPath(in.Paths, t.name))
	s.done("undid the setup of %s: %s is as it was", t.what, path)
	return nil
}

// lineDiff shows what changes between a and b, by lines.
func lineDiff(path string, a, b []byte) string {
	al, bl := strings.SplitAfter(string(a), "\n"), strings.SplitAfter(string(b), "\n")
	i := 0
	for i < len(al) && i < len(bl) && al[i] == bl[i] {
		i++
	}
	j := 0
	for j < len(al)-i && j < len(bl)-i && al[len(al)-1-j] == bl[len(bl)-1-j] {
		j++
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s (after)\n@@ line %d @@\n", path, path, i+1)
	for _, l := range al[i : len(al)-j] {
		if l != "" {
			out.WriteString("-" + strings.TrimSuffix(l, "\n") + "\n")
		}
	}
	for _, l := range bl[i : len(bl)-j] {
		if l != "" {
			out.WriteString("+" + strings.TrimSuffix(l, "\n") + "\n")
		}
	}
	return out.String()
}

// Codex: a model provider of llmkey's, chosen at the top level.

const (
	codexBegin = "# llmkey: begin (written by 'llmkey setup codex'; 'llmkey setup codex --undo' removes it)"
	codexEnd   = "# llmkey: end"
	codexWas   = "# llmkey: was: "
)

func codexBlocks(proxyURL string) (top, table string) {
	top = codexBegin + "\nmodel_provider = \"llmkey\"\n" + codexEnd + "\n"
	table = codexBegin + "\n[model_providers.llmkey]\nname = \"llmkey\"\nbase_url = \"" + proxyURL + "/openai\"\n" +
		"env_key = \"OPENAI_API_KEY\"\nwire_api = \"responses\"\nsupports_websockets = true\n" + codexEnd + "\n"
	return top, table
}

// codexBase is the user's own file: llmkey's blocks taken out, the lines
// they replaced put back.
func codexBase(data string) string {
	var out []string
	in := false
	lines := strings.SplitAfter(data, "\n")
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		switch {
		case t == codexBegin:
			in = true
			// the blank line setup put before a block at the end
			if n := len(out); n > 0 && out[n-1] == "\n" && i > 0 {
				out = out[:n-1]
			}
		case in && t == codexEnd:
			in = false
		case in:
		case strings.HasPrefix(t, codexWas):
			out = append(out, strings.TrimPrefix(l, codexWas))
		default:
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func applyCodex(data []byte, proxyURL string) ([]byte, error) {
	base := codexBase(string(data))
	top, table := codexBlocks(proxyURL)
	lines := strings.SplitAfter(base, "\n")
	inTable := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			inTable = true
		}
		if !inTable && (strings.HasPrefix(t, "model_provider ") || strings.HasPrefix(t, "model_provider=")) {
			lines[i] = codexWas + l // llmkey's model_provider wins; undo puts it back
		}
	}
	body := strings.Join(lines, "")
	sep := "\n"
	switch {
	case body == "":
		sep = ""
	case !strings.HasSuffix(body, "\n"):
		sep = "\n\n"
	}
	return []byte(top + body + sep + table), nil
}

func checkCodex(data []byte, proxyURL string) []finding {
	s := string(data)
	switch {
	case !strings.Contains(s, "[model_providers.llmkey]"):
		return []finding{{"Codex has no llmkey model provider: it ignores OPENAI_BASE_URL", "llmkey setup codex"}}
	case strings.Contains(s, "/openai/v1\""):
		return []finding{{"Codex's base URL ends in /openai/v1: requests would go to /v1/v1/...", "llmkey setup codex"}}
	case !strings.Contains(s, "base_url = \""+proxyURL+"/openai\""):
		return []finding{{"Codex's llmkey provider points at another port than the daemon's " + proxyURL, "llmkey setup codex"}}
	}
	return nil
}

// Gemini CLI: the API-key auth method, which reads GEMINI_API_KEY.

var geminiAuth = []string{"security", "auth", "selectedType"}

func applyGemini(data []byte, _ string) ([]byte, error) {
	return jsonSet(data, geminiAuth, `"gemini-api-key"`)
}

func checkGemini(data []byte, _ string) []finding {
	if v, ok := jsonGet(data, geminiAuth); !ok || v != `"gemini-api-key"` {
		return []finding{{fmt.Sprintf("Gemini CLI's auth method is %s (a Google login wins over the key), not the API key llmkey gives it", orNone(v)), "llmkey setup gemini"}}
	}
	return nil
}

// opencode: the Vercel AI SDK's Google provider has no base URL variable.

var opencodeGoogle = []string{"provider", "google", "options", "baseURL"}

func applyOpencode(data []byte, proxyURL string) ([]byte, error) {
	return jsonSet(data, opencodeGoogle, jsonQuote(proxyURL+"/gemini/v1beta"))
}

func checkOpencode(data []byte, proxyURL string) []finding {
	if v, ok := jsonGet(data, opencodeGoogle); !ok || v != jsonQuote(proxyURL+"/gemini/v1beta") {
		return []finding{{fmt.Sprintf("opencode's Google provider goes to %s, not the proxy (it reads no base URL variable)", orNone(v)), "llmkey setup opencode"}}
	}
	return nil
}

func orNone(v string) string {
	if v == "" {
		return "unset"
	}
	return v
}

func jsonQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// jsonGet is the raw value at path, if there is one.
func jsonGet(doc []byte, path []string) (string, bool) {
	obj := doc
	for i, k := range path {
		var vs, ve = -1, -1
		if !jsonscan.Members(obj, func(key []byte, s, e int) {
			if string(key) == k {
				vs, ve = s, e
			}
		}) || vs < 0 {
			return "", false
		}
		if i == len(path)-1 {
			return string(obj[vs:ve]), true
		}
		obj = obj[vs:ve]
	}
	return "", false
}

// jsonSet sets the value at path in a JSON document, leaving every other
// byte as it was: the value replaced where it is, or the missing members
// added at the start of the innermost object that is there.
func jsonSet(doc []byte, path []string, value string) ([]byte, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return []byte(nested(path, value, "") + "\n"), nil
	}
	off := 0
	obj := doc
	for i, k := range path {
		var vs, ve = -1, -1
		if !jsonscan.Members(obj, func(key []byte, s, e int) {
			if string(key) == k {
				vs, ve = s, e
			}
		}) {
			return nil, fmt.Errorf("not a JSON object where %s should be (comments are not read)", strings.Join(path[:i], "."))
		}
		if vs < 0 { // add path[i:] as the first member of obj
			members := 0
			jsonscan.Members(obj, func([]byte, int, int) { members++ })
			open := off + bytes.IndexByte(obj, '{')
			indent := strings.Repeat("  ", i+1)
			member := "\n" + indent + jsonQuote(k) + ": " + nested(path[i+1:], value, indent)
			if members > 0 {
				member += ","
			} else {
				member += "\n" + strings.Repeat("  ", i)
			}
			return []byte(string(doc[:open+1]) + member + string(doc[open+1:])), nil
		}
		if i == len(path)-1 {
			return []byte(string(doc[:off+vs]) + value + string(doc[off+ve:])), nil
		}
		off += vs
		obj = obj[vs:ve]
	}
	return doc, nil
}

// nested is value under the keys of path, as indented JSON.
func nested(path []string, value, indent string) string {
	if len(path) == 0 {
		return value
	}
	in := indent + "  "
	return "{\n" + in + jsonQuote(path[0]) + ": " + nested(path[1:], value, in) + "\n" + indent + "}"
}
