// SPDX-License-Identifier: MIT

package state

import (
	"slices"
	"sort"
	"time"

	"github.com/llmkey/llmkey/rotate"
)

// Kind is a provider's wire format, as the keyfile names it: how it
// authenticates, how it reports errors and usage (what each means is
// the wire package's). Every provider, built in or user-defined, has one.
type Kind string

const (
	KindOpenAI    Kind = "openai"
	KindAnthropic Kind = "anthropic"
	KindGemini    Kind = "gemini"
)

// Kinds lists every kind.
func Kinds() []Kind { return []Kind{KindOpenAI, KindAnthropic, KindGemini} }

// Valid reports whether k is one of the known wire formats.
func (k Kind) Valid() bool { return slices.Contains(Kinds(), k) }

// Provider is one upstream: a name used in routes and references, its wire
// format, and the base URL its own SDK would use.
type Provider struct {
	Name    string
	Kind    Kind
	BaseURL string

	// Resolved from [provider.NAME] and [daemon] by Config.Provider.
	Strategy              rotate.Strategy
	ResponseHeaderTimeout time.Duration
	StreamIdleTimeout     time.Duration
	// Fallback chain: providers of the same kind that serve what no key
	// of this one can, after PrimaryWait, with models renamed.
	Fallback       []string
	FallbackModels map[string]string
	PrimaryWait    time.Duration
	DemoteToStream bool
}

// builtins are the providers that need no [provider.NAME] table. Base URLs
// are what each provider's documentation tells SDK users to set.
var builtins = map[string]Provider{
	"openai":     {Name: "openai", Kind: KindOpenAI, BaseURL: "https://api.openai.com/v1"},
	"anthropic":  {Name: "anthropic", Kind: KindAnthropic, BaseURL: "https://api.anthropic.com"},
	"gemini":     {Name: "gemini", Kind: KindGemini, BaseURL: "https://generativelanguage.googleapis.com"},
	"openrouter": {Name: "openrouter", Kind: KindOpenAI, BaseURL: "https://openrouter.ai/api/v1"},
	"groq":       {Name: "groq", Kind: KindOpenAI, BaseURL: "https://api.groq.com/openai/v1"},
	"mistral":    {Name: "mistral", Kind: KindOpenAI, BaseURL: "https://api.mistral.ai/v1"},
	"deepseek":   {Name: "deepseek", Kind: KindOpenAI, BaseURL: "https://api.deepseek.com"},
	"together":   {Name: "together", Kind: KindOpenAI, BaseURL: "https://api.together.xyz/v1"},
	"xai":        {Name: "xai", Kind: KindOpenAI, BaseURL: "https://api.x.ai/v1"},
}

// Builtin returns the built-in provider of that name.
func Builtin(name string) (Provider, bool) {
	p, ok := builtins[name]
	return p, ok
}

// BuiltinNames lists the built-in providers, sorted.
func BuiltinNames() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
