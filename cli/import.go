package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/state"
)

// ImportCommandInput is what "llmkey import" was asked to do.
type ImportCommandInput struct {
	Keyfile string
	FromEnv bool
	File    string // a .env file; "" with FromEnv
	Environ []string
	Force   bool
	Name    string // the keys' name; "" for the first free keyN
}

func ConfigureImportCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "import",
		Usage:     "add keys from the environment or a .env file, never echoing them",
		ArgsUsage: "[--from-env] [--name NAME] [FILE]",
		Description: "Reads " + importVarNames() + " from this environment " +
			"(--from-env) or from FILE, read as the dotenv libraries read a .env file (NAME=value lines, 'export', " +
			"single, double (with backslash escapes) and back quotes, # comments, and after an unquoted value a # that " +
			"follows white space; lines of any length; nothing expanded), and adds each as a key of its provider under " +
			"the first free name key1, key2, ..., or under --name. A key already in the keyfile (the same secret) is " +
			"skipped, and so is llmkey's own token. Secrets are shown masked only. A line that cannot be read, or a " +
			"value that is plainly not a key, is a warning with its line; when nothing could be imported because of " +
			"them, import exits 1.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "from-env", Usage: "read this environment"},
			&ucli.StringFlag{Name: "name", Usage: "name the keys `NAME` (each under its provider; a second key of one provider is NAME-2)"},
			&ucli.BoolFlag{Name: "force", Usage: "take secrets even if they do not look like their provider's keys"},
		},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 0, 1); err != nil {
				return err
			}
			p, err := resolvePaths(c)
			if err != nil {
				return err
			}
			in := ImportCommandInput{Keyfile: p.Keyfile, FromEnv: c.Bool("from-env"), File: c.Args().First(), Environ: os.Environ(),
				Force: c.Bool("force"), Name: c.String("name")}
			if in.FromEnv == (in.File != "") {
				return usageError("llmkey import --from-env, or llmkey import FILE", "import: say where from, the environment or a file")
			}
			if c.IsSet("name") && !state.ValidName(in.Name) {
				return usageError("use letters, digits, '.', '-' and '_' (at most 64)", "invalid key name %q", in.Name)
			}
			return ImportCommand(c.Context, in, streams(c))
		},
	})
}

// maxDotenvSize bounds what import reads: a .env file is small, and a
// path such as /dev/zero must not take the memory.
const maxDotenvSize = 64 << 20

// importVars are the variables of the environment or the .env file, and
// the lines of the file that could not be read.
func importVars(in ImportCommandInput) (map[string]string, []dotenvProblem, error) {
	if in.FromEnv {
		vars := map[string]string{}
		for _, kv := range in.Environ {
			n, v, _ := strings.Cut(kv, "=")
			vars[n] = v
		}
		return vars, nil, nil
	}
	f, err := os.Open(in.File)
	if err != nil {
		return nil, nil, fail("give the path of a .env file", "read %s: %v", in.File, errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDotenvSize+1))
	if err != nil {
		return nil, nil, fail("give the path of a .env file", "read %s: %v", in.File, errors.Unwrap(err))
	}
	if len(data) > maxDotenvSize {
		return nil, nil, fail("give the path of a .env file", "%s is larger than %d MiB: not a .env file", in.File, maxDotenvSize>>20)
	}
	vars, problems := parseDotenv(string(data))
	return vars, problems, nil
}

// ImportCommand adds the keys found.
func ImportCommand(ctx context.Context, in ImportCommandInput, s Streams) error {
	vars, problems, err := importVars(in)
	if err != nil {
		return err
	}
	source := "the environment"
	if !in.FromEnv {
		source = in.File
	}
	for _, p := range problems {
		s.info("warning: %s:%d: %s; line skipped", in.File, p.line, p.msg)
	}
	im := importer{in: in, s: s, source: source, named: map[string]int{}}
	for _, e := range wire.ImportVariables() {
		if secret := strings.TrimSpace(vars[e[0]]); secret != "" {
			im.found++
			if err := im.add(e[0], e[1], secret); err != nil {
				return err
			}
		}
	}
	failed := len(problems) + im.skipped
	switch {
	case im.added == 0 && failed > 0:
		return &Error{Err: fmt.Errorf("nothing imported from %s: %d %s above", source, failed, plural(failed, "problem", "problems")),
			Hint: "fix what the warnings say, then import again (--force takes a key of an unusual shape)", Code: ExitFailure}
	case im.added == 0 && im.found == 0:
		s.done("no keys in %s: it sets none of %s", source, importVarNames())
	case im.added == 0:
		s.done("no new keys in %s", source)
	default:
		fmt.Fprintf(s.Err, "next: llmkey test, then llmkey exec -- TOOL (and remove the keys from %s)\n", source)
	}
	return nil
}

// importVarNames are the variables import reads, in words.
func importVarNames() string {
	var names []string
	for _, e := range wire.ImportVariables() {
		names = append(names, e[0])
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// importer adds the keys of one import, one at a time.
type importer struct {
	in                    ImportCommandInput
	s                     Streams
	source                string
	found, added, skipped int
	named                 map[string]int // provider -> keys this import named --name
}

// add adds one variable's key; a key it skips is a warning (skipped
// counts it), one already in the keyfile is not. Only a keyfile it cannot
// edit is an error.
func (im *importer) add(varName, provider, secret string) error {
	cfg, err := state.Load(im.in.Keyfile)
	if errors.Is(err, fs.ErrNotExist) {
		cfg, err = &state.Config{Path: im.in.Keyfile}, nil
	}
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%s (%s)", varName, state.Mask(secret))
	fp := state.Fingerprint(secret)
	for _, k := range cfg.Keys {
		if state.Fingerprint(k.Secret) == fp {
			im.s.done("%s: already in the keyfile as %s", what, k.Ref())
			return nil
		}
	}
	prov, _ := cfg.Provider(provider)
	problem, _ := state.SecretProblem(provider, prov.Kind, secret)
	if strings.ContainsFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		problem = "it contains spaces or control characters"
	}
	if problem != "" && !im.in.Force {
		im.skipped++
		im.s.info("warning: %s: skipped: %s (--force takes it)", what, problem)
		return nil
	}
	name := freeName(cfg, provider)
	if im.in.Name != "" {
		if name = im.in.Name; im.named[provider] > 0 {
			name = fmt.Sprintf("%s-%d", im.in.Name, im.named[provider]+1)
		}
		im.named[provider]++
	}
	k := state.Key{Provider: provider, Name: name, Secret: secret}
	line, err := state.AddKey(im.in.Keyfile, k)
	var de *state.DuplicateError
	if errors.As(err, &de) {
		im.skipped++
		im.s.info("warning: %s: skipped: %s", what, de.Error())
		fmt.Fprintf(im.s.Err, "hint: %s\n", de.HintText())
		return nil
	}
	if err != nil {
		return err
	}
	im.added++
	im.s.done("imported %s from %s as %s, %s:%d", what, im.source, k.Ref(), im.in.Keyfile, line)
	return nil
}
