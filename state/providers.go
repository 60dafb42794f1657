package state

import "sort"

// Kind is a provider's wire format: how it authenticates, how it reports
// errors and usage. Every provider, built in or user-defined, has one.
type Kind string

const (
	KindOpenAI    Kind = "openai"    // Authorization: Bearer
	KindAnthropic Kind = "anthropic" // x-api-key
	KindGemini    Kind = "gemini"    // x-goog-api-key
)

// Valid reports whether k is one of the known wire formats.
func (k Kind) Valid() bool {
	return k == KindOpenAI || k == KindAnthropic || k == KindGemini
}

// AuthHeader is the header the provider's own SDK sends the key in.
func (k Kind) AuthHeader() string {
	switch k {
	case KindAnthropic:
		return "x-api-key"
	case KindGemini:
		return "x-goog-api-key"
	default:
		return "Authorization"
	}
}

// Provider is one upstream: a name used in routes and references, its wire
// format, and the base URL its own SDK would use.
type Provider struct {
	Name    string
	Kind    Kind
	BaseURL string
}

// builtins are the providers that need no [provider.NAME] table. Base URLs
// are what each provider's documentation tells SDK users to set.
var builtins = map[string]Provider{
	"openai":     {"openai", KindOpenAI, "https://api.openai.com/v1"},
	"anthropic":  {"anthropic", KindAnthropic, "https://api.anthropic.com"},
	"gemini":     {"gemini", KindGemini, "https://generativelanguage.googleapis.com"},
	"openrouter": {"openrouter", KindOpenAI, "https://openrouter.ai/api/v1"},
	"groq":       {"groq", KindOpenAI, "https://api.groq.com/openai/v1"},
	"mistral":    {"mistral", KindOpenAI, "https://api.mistral.ai/v1"},
	"deepseek":   {"deepseek", KindOpenAI, "https://api.deepseek.com"},
	"together":   {"together", KindOpenAI, "https://api.together.xyz/v1"},
	"xai":        {"xai", KindOpenAI, "https://api.x.ai/v1"},
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
