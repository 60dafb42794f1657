// SPDX-License-Identifier: MIT

package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// publicPrefixes are the fixed prefixes providers put on their keys. They
// say which kind of key it is and nothing about the key itself, so showing
// them helps a person tell keys apart without weakening any.
var publicPrefixes = []string{
	"sk-ant-api03-", "sk-ant-admin01-", "sk-ant-", "sk-proj-", "sk-svcacct-", "sk-or-v1-",
	"sk-", "gsk_", "xai-", "AIza",
}

// Mask renders a secret for display: its public prefix, an ellipsis, and
// the last four characters when the secret is long enough that four
// characters leave plenty unknown (sk-…abcd).
func Mask(secret string) string {
	prefix := ""
	for _, p := range publicPrefixes {
		if strings.HasPrefix(secret, p) {
			prefix = p
			break
		}
	}
	rest := secret[len(prefix):]
	if len(rest) < 16 {
		return prefix + "…"
	}
	return prefix + "…" + rest[len(rest)-4:]
}

// Fingerprint is a short, stable, non-reversible name for a secret: the
// first 12 hex digits of its SHA-256. State files and logs use it to tell
// two keys with the same name apart over time (a key replaced in place).
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:6])
}

// keyPrefixes are the prefixes by which a key tells its provider.
var keyPrefixes = []struct{ prefix, provider string }{
	{"sk-ant-", "anthropic"}, {"sk-or-", "openrouter"}, {"AIza", "gemini"}, {"gsk_", "groq"}, {"xai-", "xai"},
}

var envLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(export\s+)?[A-Za-z_][A-Za-z0-9_]*=`) })

// article is name with "a" or "an" before it, as it is said: "an
// anthropic", "a gemini", "an xai" (ex-ai).
func article(name string) string {
	if name != "" && strings.ContainsRune("aeioux", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// SecretProblem says what is plainly wrong with secret as a key of
// provider (kind: its wire format), with a hint; "" when nothing is. A
// person may insist (add --force) on a key of an unusual shape.
func SecretProblem(provider string, kind Kind, secret string) (problem, hint string) {
	switch {
	case envLine().MatchString(secret):
		return "this is a NAME=value line, not a key", "paste the value alone, or import it: llmkey import --from-env (or llmkey import FILE for a .env file)"
	case IsToken(secret):
		return "this is an llmkey token, not a provider's key", "add the key the provider issued"
	case len(secret) < 20:
		return fmt.Sprintf("%d characters is too short for an API key", len(secret)), "paste the whole key, or pass --force if it really is one"
	}
	for _, p := range keyPrefixes {
		if strings.HasPrefix(secret, p.prefix) && p.provider != provider {
			if _, builtin := builtins[provider]; builtin {
				return fmt.Sprintf("this looks like %s key (%s...), not %s one", article(p.provider), p.prefix, article(provider)),
					fmt.Sprintf("llmkey add %s NAME, or pass --force to add it under %s anyway", p.provider, provider)
			}
		}
	}
	if kind == KindGemini && strings.HasPrefix(secret, "sk-") {
		return "this looks like an OpenAI-style key (sk-...), not a Gemini one (AIza...)", "pass --force to add it anyway"
	}
	if kind == KindAnthropic && provider == "anthropic" && strings.HasPrefix(secret, "sk-") && !strings.HasPrefix(secret, "sk-ant-") {
		return "this looks like an OpenAI key (sk-...), not an Anthropic one (sk-ant-...)", "llmkey add openai NAME, or pass --force to add it anyway"
	}
	return "", ""
}
