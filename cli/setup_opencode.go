// SPDX-License-Identifier: MIT

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

// opencode and Kilo CLI (opencode's format, in a file of its own): the
// Vercel AI SDK's Google provider has no base URL variable, and its key
// variable, GOOGLE_GENERATIVE_AI_API_KEY, is one exec clears so that no
// client sends the local token to Google's own host. Both tools
// expand {env:NAME} in their files, so llmkey's part names LLMKEY_URL and
// LLMKEY_TOKEN, which exec sets, and holds no port: it keeps working when
// the daemon moves.

const (
	googleBaseURLVar = `"{env:LLMKEY_URL}/gemini/v1beta"`
	googleAPIKeyVar  = `"{env:LLMKEY_TOKEN}"`
	opencodeSeed     = "{\n  \"$schema\": \"https://opencode.ai/config.json\"\n}\n"
	kiloSeed         = "{\n  \"$schema\": \"https://app.kilo.ai/config.json\"\n}\n"
)

var (
	googleBaseURL = []string{"provider", "google", "options", "baseURL"}
	googleAPIKey  = []string{"provider", "google", "options", "apiKey"}
)

// kiloFile is the global file Kilo CLI reads first, as it looks for one;
// without any, the one it would create.
func kiloFile(getenv func(string) string) (string, error) {
	dir, err := xdgFile("kilo", "")(getenv)
	if err != nil {
		return "", err
	}
	for _, name := range []string{"kilo.jsonc", "kilo.json", "opencode.jsonc", "opencode.json", "config.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name), nil
		}
	}
	return filepath.Join(dir, "kilo.jsonc"), nil
}

func applyOpencode(data []byte, _ setupEnv) ([]byte, error) {
	out, err := jsonSet(data, googleBaseURL, googleBaseURLVar)
	if err != nil {
		return nil, err
	}
	return jsonSet(out, googleAPIKey, googleAPIKeyVar)
}

func applyKilo(data []byte, e setupEnv) ([]byte, error) { return applyOpencode(data, e) }

func checkOpencode(data []byte, e setupEnv) []finding {
	return checkGoogleProvider("opencode", data, e)
}
func checkKilo(data []byte, e setupEnv) []finding { return checkGoogleProvider("Kilo CLI", data, e) }

// llmkeyURL matches a URL of a proxy llmkey ran on loopback.
var llmkeyURL = regexp.MustCompile(`^"http://(127\.0\.0\.1|localhost|\[::1\]):[0-9]+/`)

func checkGoogleProvider(what string, data []byte, e setupEnv) []finding {
	fix := "llmkey setup " + map[string]string{"opencode": "opencode", "Kilo CLI": "kilo"}[what]
	if len(e.Providers) > 0 && !slices.Contains(e.Providers, "gemini") {
		return nil // its OpenAI and Anthropic providers read the variables exec sets
	}
	base, _ := jsonGet(data, googleBaseURL)
	switch {
	case data == nil:
		return []finding{{what + "'s Google provider reads no base URL variable and goes to Google's own host", fix}}
	case base == googleBaseURLVar || base == jsonQuote(e.ProxyURL+"/gemini/v1beta"):
	case llmkeyURL.MatchString(base):
		return []finding{{what + "'s Google provider points at another port than the daemon's " + e.ProxyURL, fix + " (it writes {env:LLMKEY_URL}, which holds no port)"}}
	default:
		return []finding{{fmt.Sprintf("%s's Google provider goes to %s, not the proxy (it reads no base URL variable)", what, orNone(base)), fix}}
	}
	if key, _ := jsonGet(data, googleAPIKey); key != googleAPIKeyVar && key != `"{env:GEMINI_API_KEY}"` {
		return []finding{{what + "'s Google provider takes no key from the variables exec sets (it reads GOOGLE_GENERATIVE_AI_API_KEY, which exec clears)", fix}}
	}
	return nil
}
