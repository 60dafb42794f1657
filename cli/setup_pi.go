// SPDX-License-Identifier: MIT

package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// pi: its built-in providers read no base URL variable; models.json
// overrides their base URLs, which pi takes as they are (it expands no
// variable there), so llmkey writes the port the daemon listens on now.
// Only the providers llmkey has keys for are pointed at it: a provider
// pi reaches with its own login keeps going where it went.

// piProviders are pi's names of the providers llmkey serves, and the
// path under the proxy that is their base URL.
var piProviders = []struct{ provider, pi, path string }{
	{"openai", "openai", "/openai"},
	{"anthropic", "anthropic", "/anthropic"},
	{"gemini", "google", "/gemini/v1beta"},
}

func piServed(e setupEnv) []string { return e.served("openai", "anthropic", "gemini") }

func applyPi(data []byte, e setupEnv) ([]byte, error) {
	out := data
	for _, p := range piProviders {
		if !slices.Contains(piServed(e), p.provider) {
			continue
		}
		var err error
		if out, err = jsonSet(out, []string{"providers", p.pi, "baseUrl"}, jsonQuote(e.ProxyURL+p.path)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func checkPi(data []byte, e setupEnv) []finding {
	if data == nil {
		return []finding{{"pi's providers read no base URL variable and go to their own hosts with the local token", "llmkey setup pi"}}
	}
	var found []finding
	for _, p := range piProviders {
		if !slices.Contains(piServed(e), p.provider) {
			continue
		}
		v, _ := jsonGet(data, []string{"providers", p.pi, "baseUrl"})
		switch {
		case v == jsonQuote(e.ProxyURL+p.path):
		case llmkeyURL.MatchString(v):
			found = append(found, finding{fmt.Sprintf("pi's %s provider points at another port than the daemon's %s", p.pi, e.ProxyURL), "llmkey setup pi"})
		default:
			found = append(found, finding{fmt.Sprintf("pi's %s provider goes to %s, not the proxy (it reads no base URL variable)", p.pi, orNone(v)), "llmkey setup pi"})
		}
	}
	return found
}

// piLogins finds keys pi keeps in its auth.json (from /login) for a
// provider llmkey serves: pi sends them instead of the one exec gives.
func piLogins(modelsPath string, e setupEnv) []finding {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(modelsPath), "auth.json"))
	var auth map[string]json.RawMessage
	if err != nil || json.Unmarshal(b, &auth) != nil {
		return nil
	}
	var found []finding
	for _, p := range piProviders {
		if _, ok := auth[p.pi]; ok && slices.Contains(piServed(e), p.provider) {
			found = append(found, finding{fmt.Sprintf("pi keeps a login of its own for %s in its auth.json, which it sends instead of the key exec gives", p.pi),
				fmt.Sprintf("/logout %s in pi (or remove %q from %s)", p.pi, p.pi, strings.TrimSuffix(modelsPath, "models.json")+"auth.json")})
		}
	}
	return found
}
