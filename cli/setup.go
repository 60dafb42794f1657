// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
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
	// bin is the command that runs the tool, when it is not its name;
	// binIs, for a name other programs have too, is a part of the path
	// of the tool's own (npm installs it as a link into its package).
	bin, binIs string
	// needsNothing says why the tool needs no setup; then the rest is nil.
	needsNothing string
	config       func(getenv func(string) string) (string, error)
	// seed is what a new file holds before llmkey's part is added: what
	// the tool itself would write there, so that it does not rewrite the
	// file (and undo can still put it back) the first time it runs.
	seed string
	// apply returns the configuration with llmkey's part for env;
	// applied again it changes nothing.
	apply func(data []byte, env setupEnv) ([]byte, error)
	// check says what in the configuration (nil: there is none) keeps
	// the tool off the proxy.
	check func(data []byte, env setupEnv) []finding
	// note is said after a setup: what the tool still needs.
	note string
	// scaffold says which values setup writes into a JSON file only so
	// that the tool reads what holds llmkey's (a whole entry's other
	// fields): an undo after the tool rewrote the file leaves them.
	scaffold func(path []string) bool
}

// setupEnv is what a tool's configuration is written for: the proxy's
// root URL now, and the providers that have keys.
type setupEnv struct {
	ProxyURL  string
	Providers []string
}

// served are the providers among those a tool's file names one by one
// that llmkey has keys for; all of them while it has none.
func (e setupEnv) served(names ...string) []string {
	var out []string
	for _, n := range names {
		if slices.Contains(e.Providers, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return names
	}
	return out
}

// command is what runs the tool.
func (t tool) command() string {
	if t.bin != "" {
		return t.bin
	}
	return t.name
}

// finding is one trap doctor found, with its fix.
type finding struct{ problem, fix string }

var tools = []tool{
	{name: "codex", what: "Codex CLI", config: homeFile("CODEX_HOME", ".codex", "config.toml"), apply: atURL(applyCodex), check: checkAtURL(checkCodex)},
	{name: "gemini", what: "Gemini CLI", config: homeFile("GEMINI_CLI_HOME", ".gemini", "settings.json"), apply: atURL(applyGemini), check: checkAtURL(checkGemini)},
	{name: "opencode", what: "opencode", config: xdgFile("opencode", "opencode.json"), seed: opencodeSeed, apply: applyOpencode, check: checkOpencode},
	{name: "qwen", what: "Qwen Code", config: homeFile("QWEN_HOME", ".qwen", "settings.json"), apply: applyQwen, check: checkQwen, note: qwenNote},
	{name: "kilo", what: "Kilo CLI", config: kiloFile, seed: kiloSeed, apply: applyKilo, check: checkKilo},
	{name: "pi", what: "pi", config: homeFile("PI_CODING_AGENT_DIR", filepath.Join(".pi", "agent"), "models.json"), apply: applyPi, check: checkPi, binIs: "pi-coding-agent"},
	{name: "continue", what: "Continue's cn", bin: "cn", binIs: "@continuedev", config: homeFile("CONTINUE_GLOBAL_DIR", ".continue", "config.yaml"), apply: applyContinue, check: checkContinue, note: continueNote},
	{name: "cline", what: "cline", config: clineFile, seed: clineSeed, apply: applyCline, check: checkCline, note: clineNote, scaffold: clineScaffold},
	{name: "claude", what: "Claude Code", needsNothing: "Claude Code reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY, which exec sets: 'llmkey exec -- claude' works as it is"},
}

// atURL and checkAtURL take a tool's apply and check that need only the
// proxy's URL.
func atURL(apply func([]byte, string) ([]byte, error)) func([]byte, setupEnv) ([]byte, error) {
	return func(data []byte, e setupEnv) ([]byte, error) { return apply(data, e.ProxyURL) }
}

func checkAtURL(check func([]byte, string) []finding) func([]byte, setupEnv) []finding {
	return func(data []byte, e setupEnv) []finding { return check(data, e.ProxyURL) }
}

func findTool(name string) (tool, bool) {
	for _, t := range tools {
		if t.name == name {
			return t, true
		}
	}
	return tool{}, false
}

// toolRunBy is the tool that command (a path or a name) runs.
func toolRunBy(command string) (tool, bool) {
	base := filepath.Base(command)
	for _, t := range tools {
		if t.command() == base && t.runBy(command) {
			return t, true
		}
	}
	return tool{}, false
}

// runBy reports whether command, found on PATH, is the tool's own and
// not another program of the same name.
func (t tool) runBy(command string) bool {
	path, err := exec.LookPath(command)
	if err != nil {
		return false
	}
	if real, err := filepath.EvalSymlinks(path); err == nil && t.binIs != "" {
		return strings.Contains(real, t.binIs)
	}
	return t.binIs == ""
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
		ArgsUsage: "codex|gemini|opencode|qwen|kilo|pi|continue|cline|claude",
		Description: "Edits the tool's configuration in place, as add edits the keyfile: every other byte is kept, running it " +
			"again changes nothing, a symlinked file is edited through its link, and --undo puts the file back as it was, " +
			"byte for byte, from a record of llmkey's edit alone (never a copy of the file, which may hold keys); from a JSON " +
			"file the tool rewrote since, it takes llmkey's values out alone (refused when they changed). A Codex file that Codex would not read as meant after the edit is refused with the fix. " +
			"Where the tool expands variables in its file, llmkey's part names LLMKEY_URL and LLMKEY_TOKEN (set by exec) and " +
			"holds no port; elsewhere it holds the port the daemon listens on now (starting it if needed), and 'llmkey doctor' " +
			"says when that port changed. codex: a model provider \"llmkey\" in ~/.codex/config.toml (Responses over WebSocket, " +
			"the key from OPENAI_API_KEY). gemini: the API-key auth method in ~/.gemini/settings.json. opencode, kilo: the Google " +
			"provider's baseURL and apiKey ({env:LLMKEY_URL}, {env:LLMKEY_TOKEN}) in ~/.config/opencode/opencode.json, " +
			"~/.config/kilo/kilo.jsonc. qwen: the OpenAI-compatible auth type in ~/.qwen/settings.json. pi: the base URL of " +
			"each provider llmkey has keys for in ~/.pi/agent/models.json. continue: llmkey's models, first in the list of " +
			"~/.continue/config.yaml (${{ secrets.LLMKEY_URL }}). cline: the openai-compatible provider's base URL in " +
			"~/.cline/data/settings/providers.json, chosen. claude: nothing is needed.",
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

// SetupCommand writes (or, with Undo, removes) llmkey's part of a tool's
// configuration.
func SetupCommand(ctx context.Context, in SetupCommandInput, s Streams) error {
	t, ok := findTool(in.Tool)
	if !ok {
		return usageError("llmkey setup knows "+strings.Join(toolNames(), ", "), "no setup for %q", in.Tool)
	}
	if t.needsNothing != "" {
		s.done("%s needs no setup: %s", t.what, t.needsNothing)
		return nil
	}
	path, err := t.config(in.Getenv)
	if err != nil {
		return fail("set HOME", "find %s's configuration: %v", t.what, err)
	}
	f, err := readToolFile(path)
	if err != nil {
		return err
	}
	if in.Undo {
		return undoSetup(in, t, f, s)
	}
	st, _, err := ensureDaemon(ctx, in.Paths)
	if err != nil {
		return err
	}
	env := setupEnvOf(st)
	data := f.data
	if len(bytes.TrimSpace(data)) == 0 && t.seed != "" {
		data = []byte(t.seed)
	}
	updated, err := t.apply(data, env)
	if err != nil {
		return fail(hintOr(err, "fix the file by hand, or move it aside and run setup again"), "%s: %v", path, err)
	}
	return saveSetup(in, t, f, updated, st.ProxyURL, s)
}

// saveSetup writes updated over the tool's file f (unless it is that
// already, or this is a dry run), with the record undo needs.
func saveSetup(in SetupCommandInput, t tool, f toolFile, updated []byte, proxyURL string, s Streams) error {
	path := f.path
	prev, legacy := readSetupRecord(in.Paths, t.name)
	same := bytes.Equal(updated, f.data) && f.existed
	if in.DryRun && !same {
		fmt.Fprint(s.Out, lineDiff(path, f.data, updated))
		return nil
	}
	if !in.DryRun && (!same || legacy) { // an older record is written anew, without the file
		rec, err := newSetupRecord(prev, path, f.data, updated, f.existed, t)
		if err != nil {
			return err
		}
		if err := writeSetupRecord(in.Paths, t.name, rec); err != nil {
			return err
		}
	}
	if same {
		s.done("%s is set up already (%s, proxy %s)", t.what, path, proxyURL)
		return nil
	}
	if err := f.write(updated); err != nil {
		return err
	}
	s.done("set up %s in %s for the proxy at %s", t.what, path, proxyURL)
	if t.note != "" {
		fmt.Fprintf(s.Err, "note: %s\n", t.note)
	}
	fmt.Fprintf(s.Err, "next: llmkey exec -- %s ... (undo: llmkey setup %s --undo)\n", t.command(), t.name)
	return nil
}

// setupEnvOf is what the daemon's status says a tool's file is written
// for.
func setupEnvOf(st *control.Status) setupEnv {
	e := setupEnv{ProxyURL: st.ProxyURL}
	for name, p := range st.Providers {
		if len(p.Keys) > 0 {
			e.Providers = append(e.Providers, name)
		}
	}
	slices.Sort(e.Providers)
	return e
}

// hintOr is err's own hint, else hint.
func hintOr(err error, hint string) string {
	var h hinter
	if errors.As(err, &h) && h.HintText() != "" {
		return h.HintText()
	}
	return hint
}

// toolFile is a tool's configuration file: path as the tool names it, and
// target, the file it is once symlinks are followed (dotfile managers
// link them), which an edit replaces while the link stays.
type toolFile struct {
	path, target string
	data         []byte
	existed      bool
}

func readToolFile(path string) (toolFile, error) {
	f := toolFile{path: path, target: path}
	t, err := filepath.EvalSymlinks(path)
	switch {
	case err == nil:
		f.target = t
	case !errors.Is(err, fs.ErrNotExist):
		return f, fail("check that "+path+" is yours and readable", "resolve %s: %v", path, err)
	default:
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return f, fail("create the file it points to, or remove the link", "%s is a symlink to a file that does not exist", path)
		}
	}
	f.data, err = os.ReadFile(f.target)
	f.existed = err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return f, fail("check that "+path+" is yours and readable", "read %s: %v", path, err)
	}
	return f, nil
}

// write replaces the file (the link's target) with data, keeping its mode.
func (f toolFile) write(data []byte) error {
	if err := os.MkdirAll(filepath.Dir(f.target), 0o700); err != nil {
		return err
	}
	perm := os.FileMode(0o600)
	if fi, err := os.Stat(f.target); err == nil {
		perm = fi.Mode().Perm()
	}
	return state.WriteAtomic(f.target, data, perm)
}

func undoSetup(in SetupCommandInput, t tool, f toolFile, s Streams) error {
	rec, _ := readSetupRecord(in.Paths, t.name)
	if rec == nil || rec.Path != f.path {
		s.done("%s was not set up by llmkey here; nothing to undo", t.what)
		return nil
	}
	before, ok := rec.restore(f.data)
	rewritten := false
	if !ok && f.existed { // the tool rewrote it: take out llmkey's values alone
		before, ok = rec.restoreMembers(f.data)
		rewritten = ok
	}
	if !f.existed || !ok {
		return fail("remove llmkey's part by hand (see 'llmkey setup "+t.name+" --dry-run' for what it is)",
			"%s changed since llmkey setup %s; not putting the old one back over your edits", f.path, t.name)
	}
	if in.DryRun {
		fmt.Fprint(s.Out, lineDiff(f.path, f.data, before))
		return nil
	}
	if rec.Existed || rewritten {
		if err := f.write(before); err != nil {
			return err
		}
	} else if err := os.Remove(f.target); err != nil {
		return err
	}
	os.Remove(setupRecordPath(in.Paths, t.name))
	if rewritten {
		s.done("undid the setup of %s: llmkey's values are out of %s, and what %s wrote there since is kept", t.what, f.path, t.what)
		return nil
	}
	s.done("undid the setup of %s: %s is as it was", t.what, f.path)
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
	if err := codexCanTake(base); err != nil {
		return nil, err
	}
	top, table := codexBlocks(proxyURL)
	lines := strings.SplitAfter(base, "\n")
	for _, k := range state.RootKeys([]byte(base)) {
		if len(k.Path) == 1 && k.Path[0] == "model_provider" {
			lines[k.Line] = codexWas + lines[k.Line] // llmkey's model_provider wins; undo puts it back
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
	out := top + body + sep + table
	if err := codexMeans(base, out, proxyURL); err != nil {
		return nil, fmt.Errorf("internal error: the edited file would not mean what it should (%v); nothing was written", err)
	}
	return []byte(out), nil
}

// setupError is a tool file that setup cannot edit, with what to do.
type setupError struct{ msg, hint string }

func (e *setupError) Error() string    { return e.msg }
func (e *setupError) HintText() string { return e.hint }

// codexCanTake says why llmkey's model provider cannot be added to base
// (the user's file, llmkey's part taken out) so that Codex, whose TOML
// parser is strict, reads it and uses it; nil when it can.
func codexCanTake(base string) error {
	var doc map[string]any
	if _, err := toml.Decode(base, &doc); err != nil {
		return &setupError{fmt.Sprintf("not valid TOML, so Codex cannot read it either: %v", err), "fix that line, then run setup again"}
	}
	for _, k := range state.RootKeys([]byte(base)) {
		if len(k.Path) == 1 && k.Path[0] == "model_providers" {
			return &setupError{fmt.Sprintf("line %d sets model_providers whole (an inline table), to which no provider can be added", k.Line+1),
				"write each provider as a table of its own, [model_providers.NAME], then run setup again"}
		}
	}
	if providers, _ := doc["model_providers"].(map[string]any); providers["llmkey"] != nil {
		return &setupError{"it has a model provider named llmkey that llmkey setup did not write",
			"remove or rename [model_providers.llmkey], then run setup again"}
	}
	name, _ := doc["profile"].(string)
	profiles, _ := doc["profiles"].(map[string]any)
	if p, _ := profiles[name].(map[string]any); p["model_provider"] != nil && p["model_provider"] != "llmkey" {
		return &setupError{fmt.Sprintf("the profile it selects (profile = %q) sets model_provider = %q, which wins over llmkey's", name, fmt.Sprint(p["model_provider"])),
			fmt.Sprintf("take model_provider out of [profiles.%s] (or set it to \"llmkey\"), then run setup again", name)}
	}
	return nil
}

// codexMeans checks, by reading both as Codex would, that out is base
// with only llmkey's model provider added and chosen at the top level.
func codexMeans(base, out, proxyURL string) error {
	var before, after map[string]any
	toml.Decode(base, &before)
	if _, err := toml.Decode(out, &after); err != nil {
		return err
	}
	if after["model_provider"] != "llmkey" {
		return fmt.Errorf("model_provider is %v, not llmkey", after["model_provider"])
	}
	providers, _ := after["model_providers"].(map[string]any)
	want := map[string]any{"name": "llmkey", "base_url": proxyURL + "/openai", "env_key": "OPENAI_API_KEY", "wire_api": "responses", "supports_websockets": true}
	if !reflect.DeepEqual(providers["llmkey"], want) {
		return fmt.Errorf("[model_providers.llmkey] is %v", providers["llmkey"])
	}
	delete(providers, "llmkey")
	if _, had := before["model_providers"]; !had && len(providers) == 0 {
		delete(after, "model_providers")
	}
	delete(before, "model_provider")
	delete(after, "model_provider")
	if !reflect.DeepEqual(before, after) {
		return errors.New("the rest of the file reads differently")
	}
	return nil
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
			return nil, fmt.Errorf("not a JSON object at %s (comments are not read)", jsonPathName(path[:i]))
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

// jsonPathName names a place in a JSON document for a message.
func jsonPathName(path []string) string {
	if len(path) == 0 {
		return "the top level"
	}
	return strings.Join(path, ".")
}

// nested is value under the keys of path, as indented JSON.
func nested(path []string, value, indent string) string {
	if len(path) == 0 {
		return value
	}
	in := indent + "  "
	return "{\n" + in + jsonQuote(path[0]) + ": " + nested(path[1:], value, in) + "\n" + indent + "}"
}

// toolFindings is what keeps tool t off the proxy, each problem naming
// its file: the traps in that file, an llmkey token kept in it, or, when
// there is no file and onPath says the tool is installed, that it is not
// set up.
func toolFindings(t tool, env setupEnv, getenv func(string) string, onPath bool) []finding {
	if t.check == nil {
		return nil
	}
	path, err := t.config(getenv)
	if err != nil {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil && !onPath {
		return nil
	}
	var found []finding
	for _, f := range t.check(data, env) {
		if data == nil {
			f.problem = fmt.Sprintf("%s is not set up (%s does not exist): %s", t.what, path, f.problem)
		} else {
			f.problem += " (" + path + ")"
		}
		found = append(found, f)
	}
	if f, ok := tokenInFile(t, path, data); ok {
		found = append(found, f)
	}
	return append(found, toolLogins(t, path, data, env)...)
}

// toolSetupFindings is what keeps the tool that command runs off the
// proxy (nothing for a command setup does not know).
func toolSetupFindings(command string, env setupEnv, getenv func(string) string) []finding {
	t, ok := toolRunBy(command)
	if !ok {
		return nil
	}
	return toolFindings(t, env, getenv, true)
}

// llmkeyToken matches the local token and scoped ones.
var llmkeyToken = regexp.MustCompile(`llmk-(local|scoped)-[A-Za-z0-9_-]{8,}`)

// tokenInFile finds an llmkey token a tool kept in its own file (Continue's
// cn writes ANTHROPIC_API_KEY into its config): from there the tool sends
// it wherever that setting points, also to a provider's own host.
func tokenInFile(t tool, path string, data []byte) (finding, bool) {
	loc := llmkeyToken.FindIndex(data)
	if loc == nil {
		return finding{}, false
	}
	line := bytes.Count(data[:loc[0]], []byte("\n")) + 1
	fix := "remove it (" + t.what + " takes its key from the variables exec sets), then llmkey setup " + t.name
	if t.name == "continue" {
		fix = "remove the models with that apiKey (cn -p put them there from ANTHROPIC_API_KEY), and run cn -p with --config " + path
	}
	return finding{fmt.Sprintf("%s keeps an llmkey token in %s (line %d), which it sends wherever that setting points, also to a provider's own host", t.what, path, line), fix}, true
}
