package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/state"
)

// ImportCommandInput is what "llmkey import" was asked to do.
type ImportCommandInput struct {
	Keyfile string
	FromEnv bool
	File    string // a .env file; "" with FromEnv
	Environ []string
	Force   bool
}

// envKeys are the variables in which the SDKs of the built-in providers
// take their key, and the provider each names.
var envKeys = []struct{ name, provider string }{
	{"OPENAI_API_KEY", "openai"}, {"ANTHROPIC_API_KEY", "anthropic"}, {"GEMINI_API_KEY", "gemini"}, {"GOOGLE_API_KEY", "gemini"},
	{"OPENROUTER_API_KEY", "openrouter"}, {"GROQ_API_KEY", "groq"}, {"MISTRAL_API_KEY", "mistral"}, {"DEEPSEEK_API_KEY", "deepseek"},
	{"TOGETHER_API_KEY", "together"}, {"XAI_API_KEY", "xai"},
}

func ConfigureImportCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "import",
		Usage:     "add keys from the environment or a .env file, never echoing them",
		ArgsUsage: "[--from-env] [FILE]",
		Description: "Reads OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY (or GOOGLE_API_KEY), OPENROUTER_API_KEY, " +
			"GROQ_API_KEY, MISTRAL_API_KEY, DEEPSEEK_API_KEY, TOGETHER_API_KEY and XAI_API_KEY from this environment " +
			"(--from-env) or from FILE (NAME=value lines, 'export' and quotes allowed, # comments), and adds each as a " +
			"key of its provider under the first free name key1, key2, ... A key already in the keyfile (the same " +
			"secret) is skipped, and so is llmkey's own token. Secrets are shown masked only.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "from-env", Usage: "read this environment"},
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
			in := ImportCommandInput{Keyfile: p.Keyfile, FromEnv: c.Bool("from-env"), File: c.Args().First(), Environ: os.Environ(), Force: c.Bool("force")}
			if in.FromEnv == (in.File != "") {
				return usageError("llmkey import --from-env, or llmkey import FILE", "import: say where from, the environment or a file")
			}
			return ImportCommand(c.Context, in, streams(c))
		},
	})
}

// ImportCommand adds the keys found.
func ImportCommand(ctx context.Context, in ImportCommandInput, s Streams) error {
	vars := map[string]string{}
	source := "the environment"
	if in.FromEnv {
		for _, kv := range in.Environ {
			n, v, _ := strings.Cut(kv, "=")
			vars[n] = v
		}
	} else {
		source = in.File
		f, err := os.Open(in.File)
		if err != nil {
			return fail("give the path of a .env file", "read %s: %v", in.File, errors.Unwrap(err))
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			line = strings.TrimPrefix(line, "export ")
			n, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			} else if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
				v = v[1 : len(v)-1]
			} else if i := strings.Index(v, " #"); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
			vars[strings.TrimSpace(n)] = v
		}
	}
	added := 0
	for _, e := range envKeys {
		secret := strings.TrimSpace(vars[e.name])
		if secret == "" {
			continue
		}
		cfg, err := state.Load(in.Keyfile)
		if errors.Is(err, fs.ErrNotExist) {
			cfg, err = &state.Config{Path: in.Keyfile}, nil
		}
		if err != nil {
			return err
		}
		fp := state.Fingerprint(secret)
		dup := ""
		for _, k := range cfg.Keys {
			if state.Fingerprint(k.Secret) == fp {
				dup = k.Ref()
			}
		}
		prov, _ := cfg.Provider(e.provider)
		switch problem, _ := state.SecretProblem(e.provider, prov.Kind, secret); {
		case dup != "":
			s.info("%s (%s): already in the keyfile as %s", e.name, state.Mask(secret), dup)
			continue
		case problem != "" && !in.Force:
			s.info("%s (%s): skipped: %s (--force takes it)", e.name, state.Mask(secret), problem)
			continue
		}
		k := state.Key{Provider: e.provider, Name: freeName(cfg, e.provider), Secret: secret}
		line, err := state.AddKey(in.Keyfile, k)
		if err != nil {
			return err
		}
		added++
		s.done("imported %s from %s as %s (%s), %s:%d", e.name, source, k.Ref(), state.Mask(secret), in.Keyfile, line)
	}
	if added == 0 {
		s.info("no new keys in %s", source)
	} else {
		fmt.Fprintf(s.Err, "next: llmkey test, then llmkey exec -- TOOL (and remove the keys from %s)\n", source)
	}
	return nil
}
