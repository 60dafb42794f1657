// SPDX-License-Identifier: MIT

package wire

import (
	"fmt"
	"slices"

	"github.com/llmkey/llmkey/state"
)

// ProviderEnv is what the official SDKs of one built-in provider read to
// find it, as exec and env set and clear it, doctor names it and import
// reads real keys from it. Every tool can also use LLMKEY_URL and
// LLMKEY_TOKEN. TestEveryBuiltinProviderHasItsWireFacts fails when a
// built-in provider lacks its row.
type ProviderEnv struct {
	Provider string
	// BaseURL are the variables that point the SDKs at the provider:
	// set to its route on the proxy.
	BaseURL []string
	// Key are the variables the SDKs take the key from: set to the
	// local token.
	Key []string
	// Import are the variables a real key of the provider is read from
	// by import, first the SDKs' own (Key's first, when empty).
	Import []string
	// Clear are the variables that would send the SDKs around the proxy,
	// or with another credential or organisation: removed, with why.
	Clear []EnvVar
}

// EnvVar is a variable exec clears and what it does to a tool that
// reads it; Harmless, that through the proxy it changes nothing (so a
// shell that sets it needs no fix).
type EnvVar struct {
	Name, Why string
	Harmless  bool
}

// providerEnvs is one row per built-in provider, the most used first:
// import reads their variables in this order.
var providerEnvs = []ProviderEnv{
	{Provider: "openai", BaseURL: []string{"OPENAI_BASE_URL", "OPENAI_API_BASE"}, Key: []string{"OPENAI_API_KEY"},
		Clear: []EnvVar{
			{"OPENAI_ORG_ID", "the openai SDKs send it as OpenAI-Organization; the proxy sends only the organization the keyfile names for the key that serves", true},
			{"OPENAI_ORGANIZATION", "some OpenAI clients send it as OpenAI-Organization; the proxy sends only the organization the keyfile names for the key that serves", true},
			{"OPENAI_PROJECT_ID", "the openai SDKs send it as OpenAI-Project; the proxy sends only the project the keyfile names for the key that serves", true},
			{"OPENAI_PROJECT", "some OpenAI clients send it as OpenAI-Project; the proxy sends only the project the keyfile names for the key that serves", true},
		}},
	{Provider: "anthropic", BaseURL: []string{"ANTHROPIC_BASE_URL"}, Key: []string{"ANTHROPIC_API_KEY"},
		Clear: []EnvVar{
			{"ANTHROPIC_AUTH_TOKEN", "Claude Code sends it instead of ANTHROPIC_API_KEY, so not the local token", false},
			{"ANTHROPIC_API_URL", "some Anthropic clients read it before ANTHROPIC_BASE_URL", false},
		}},
	{Provider: "gemini", BaseURL: []string{"GOOGLE_GEMINI_BASE_URL"}, Key: []string{"GEMINI_API_KEY"},
		Import: []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"},
		Clear: []EnvVar{
			{"GOOGLE_API_KEY", "the genai SDKs send it instead of GEMINI_API_KEY, so not the local token", false},
			{"GOOGLE_GENAI_USE_VERTEXAI", "the genai SDKs and Gemini CLI then go to Vertex AI, whatever GOOGLE_GEMINI_BASE_URL says", false},
			// Not set to the local token either: a client pointed at the
			// proxy in its code or file takes LLMKEY_TOKEN.
			{"GOOGLE_GENERATIVE_AI_API_KEY", "the Vercel AI SDK's Google provider reads it, and no base URL variable: with a key from it, it goes to Google's own host", false},
		}},
	prefixed("openrouter", "OPENROUTER"),
	prefixed("groq", "GROQ"),
	prefixed("mistral", "MISTRAL"),
	prefixed("deepseek", "DEEPSEEK"),
	prefixed("together", "TOGETHER"),
	prefixed("xai", "XAI"),
}

// prefixed is the row of a provider whose SDKs read NAME_API_KEY, and,
// those that can be pointed elsewhere, NAME_BASE_URL.
func prefixed(provider, name string) ProviderEnv {
	return ProviderEnv{Provider: provider, BaseURL: []string{name + "_BASE_URL"}, Key: []string{name + "_API_KEY"}}
}

// EnvOf is provider's row; false for a provider that is not built in.
func EnvOf(provider string) (ProviderEnv, bool) {
	for _, e := range providerEnvs {
		if e.Provider == provider {
			return e, true
		}
	}
	return ProviderEnv{}, false
}

// SDKEnv is what exec and env do for provider: the variables set to
// point its SDKs at providerURL with token, and those cleared.
func SDKEnv(provider, providerURL, token string) (set [][2]string, unset []string) {
	e, _ := EnvOf(provider)
	for _, v := range e.BaseURL {
		set = append(set, [2]string{v, providerURL})
	}
	for _, v := range e.Key {
		set = append(set, [2]string{v, token})
	}
	for _, v := range e.Clear {
		unset = append(unset, v.Name)
	}
	return set, unset
}

// Cleared are the variables exec clears for any built-in provider.
func Cleared() []EnvVar {
	var out []EnvVar
	for _, e := range providerEnvs {
		out = append(out, e.Clear...)
	}
	return out
}

// ImportVariables are the variables import reads a real key from, each
// with its provider.
func ImportVariables() [][2]string {
	var out [][2]string
	for _, e := range providerEnvs {
		vars := e.Import
		if len(vars) == 0 && len(e.Key) > 0 {
			vars = e.Key[:1]
		}
		for _, v := range vars {
			out = append(out, [2]string{v, e.Provider})
		}
	}
	return out
}

// MissingFacts names what the wire package lacks for each of providers
// that is built in: its kind's Format, and its SDKs' variables.
func MissingFacts(providers []state.Provider) []string {
	var out []string
	for _, p := range providers {
		if _, ok := formats[p.Kind]; !ok {
			out = append(out, fmt.Sprintf("%s: no wire format for kind %q", p.Name, p.Kind))
		}
		e, ok := EnvOf(p.Name)
		if !ok || len(e.BaseURL) == 0 || len(e.Key) == 0 {
			out = append(out, p.Name+": no SDK variables (a row in wire's providerEnvs)")
			continue
		}
		for _, v := range append(slices.Clone(e.BaseURL), e.Key...) {
			if v == "" {
				out = append(out, p.Name+": an empty variable name")
			}
		}
	}
	return out
}
