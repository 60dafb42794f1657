// SPDX-License-Identifier: MIT

package cli

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Continue's cn: models are named one by one in config.yaml, each with
// its apiBase; cn reads ${{ secrets.NAME }} from the environment first,
// so llmkey's models name LLMKEY_URL and LLMKEY_TOKEN, which exec sets,
// and hold no port. They go first in the list, where cn takes its model
// from when it was given none.

const (
	continueBegin = "# llmkey: begin (written by 'llmkey setup continue'; 'llmkey setup continue --undo' removes it)"
	continueEnd   = "# llmkey: end"
	continueNote  = "cn -p writes ANTHROPIC_API_KEY (the local token, under exec) into config.yaml, with models that go to " +
		"Anthropic's own host, unless it is given a config: run it as cn -p --config ~/.continue/config.yaml"
)

// continueModels are llmkey's models for each provider: the path under
// the proxy that is cn's apiBase for it, and a model to start with.
var continueModels = []struct{ provider, cn, path, model string }{
	{"openai", "openai", "/openai/", "gpt-5"},
	{"anthropic", "anthropic", "/anthropic/v1/", "claude-sonnet-4-5"},
	{"gemini", "gemini", "/gemini/v1beta/", "gemini-2.5-pro"},
}

// continueBlock is llmkey's models as list items indented by indent,
// between its markers.
func continueBlock(e setupEnv, indent string) string {
	return indent + continueBegin + "\n" + continueItems(e, indent) + indent + continueEnd + "\n"
}

func continueItems(e setupEnv, indent string) string {
	var b strings.Builder
	for _, m := range continueModels {
		if !slices.Contains(e.served("openai", "anthropic", "gemini"), m.provider) {
			continue
		}
		fmt.Fprintf(&b, "%s- name: %s (llmkey)\n%s  provider: %s\n%s  model: %s\n%s  apiBase: ${{ secrets.LLMKEY_URL }}%s\n%s  apiKey: ${{ secrets.LLMKEY_TOKEN }}\n",
			indent, m.model, indent, m.cn, indent, m.model, indent, m.path, indent)
	}
	return b.String()
}

var (
	continueModelsKey = regexp.MustCompile(`^models:[ \t]*(#.*)?$`)
	continueItem      = regexp.MustCompile(`^([ \t]*)- `)
)

// continueBase is the user's file: llmkey's block taken out.
func continueBase(data string) string {
	var out []string
	in := false
	for _, l := range strings.SplitAfter(data, "\n") {
		switch t := strings.TrimSpace(l); {
		case t == continueBegin:
			in = true
		case in && t == continueEnd:
			in = false
		case !in:
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

func applyContinue(data []byte, e setupEnv) ([]byte, error) {
	base := continueBase(string(data))
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(base), &doc); err != nil {
		return nil, &setupError{fmt.Sprintf("not valid YAML, so cn cannot read it either: %v", err), "fix that line, then run setup again"}
	}
	if strings.TrimSpace(base) == "" {
		base = "name: llmkey\nversion: 1.0.0\nschema: v1\n"
	}
	if base != "" && !strings.HasSuffix(base, "\n") {
		base += "\n"
	}
	lines := strings.SplitAfter(base, "\n")
	at := -1
	for i, l := range lines {
		if continueModelsKey.MatchString(strings.TrimRight(l, "\r\n")) {
			at = i
		}
	}
	var out string
	switch {
	case at >= 0:
		out = strings.Join(lines[:at+1], "") + continueBlock(e, itemIndent(lines[at+1:])) + strings.Join(lines[at+1:], "")
	case doc["models"] != nil:
		return nil, &setupError{"its models are not a list of '- ' items under a line of their own, models:", "write them so, then run setup again"}
	default: // a models: line of llmkey's own, taken out with its block
		out = base + continueBegin + "\nmodels:\n" + continueItems(e, "  ") + continueEnd + "\n"
	}
	if err := continueMeans(base, out, e); err != nil {
		return nil, fmt.Errorf("internal error: the edited file would not mean what it should (%v); nothing was written", err)
	}
	return []byte(out), nil
}

// itemIndent is how the list items in lines (those after models:) are
// indented: as the first, or by two spaces when there is none.
func itemIndent(lines []string) string {
	for _, l := range lines {
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if m := continueItem.FindStringSubmatch(l); m != nil {
			return m[1]
		}
		break
	}
	return "  "
}

// continueMeans checks, by reading both as YAML, that out is base with
// llmkey's models first in the list and nothing else changed.
func continueMeans(base, out string, e setupEnv) error {
	var before, after map[string]any
	yaml.Unmarshal([]byte(base), &before)
	if err := yaml.Unmarshal([]byte(out), &after); err != nil {
		return err
	}
	var ours []any
	var wrap struct {
		M []any `yaml:"m"`
	}
	yaml.Unmarshal([]byte("m:\n"+continueItems(e, "  ")), &wrap)
	ours = wrap.M
	models, _ := after["models"].([]any)
	if len(models) < len(ours) || !reflect.DeepEqual(models[:len(ours)], ours) {
		return errors.New("llmkey's models are not the first in the list")
	}
	rest, _ := before["models"].([]any)
	if !reflect.DeepEqual(models[len(ours):], rest) && !(len(rest) == 0 && len(models) == len(ours)) {
		return errors.New("the user's models read differently")
	}
	delete(before, "models")
	delete(after, "models")
	if !reflect.DeepEqual(before, after) {
		return errors.New("the rest of the file reads differently")
	}
	return nil
}

func checkContinue(data []byte, _ setupEnv) []finding {
	switch {
	case data == nil:
		return []finding{{"without a config.yaml of its own, cn -p writes ANTHROPIC_API_KEY (the local token, under exec) into one, with models that go to Anthropic's own host", "llmkey setup continue"}}
	case !strings.Contains(string(data), continueBegin):
		return []finding{{"Continue's cn has none of llmkey's models: its own go to their providers' hosts", "llmkey setup continue"}}
	}
	return nil
}
