// SPDX-License-Identifier: MIT

package state

import (
	"strings"
	"testing"
)

// A key of another provider is named with the article it is said with.
func TestSecretProblemSaysItsArticles(t *testing.T) {
	for _, tt := range []struct{ provider, secret, says string }{
		{"openai", "sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaaaa", "this looks like an anthropic key (sk-ant-...), not an openai one"},
		{"groq", "AIzaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "this looks like a gemini key (AIza...), not a groq one"},
		{"gemini", "xai-aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "this looks like an xai key (xai-...), not a gemini one"},
		{"anthropic", "sk-or-v1-aaaaaaaaaaaaaaaaaaaaaaaa", "this looks like an openrouter key (sk-or-...), not an anthropic one"},
	} {
		p, _ := Builtin(tt.provider)
		if problem, _ := SecretProblem(tt.provider, p.Kind, tt.secret); !strings.Contains(problem, tt.says) {
			t.Errorf("%s key under %s: %q", tt.provider, tt.says, problem)
		}
	}
}
