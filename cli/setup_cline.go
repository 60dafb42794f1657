// SPDX-License-Identifier: MIT

package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// cline: of its providers, the openai-compatible one takes a base URL
// (providers.json, which "cline auth" writes); the key it sends is
// OPENAI_API_KEY of the process that makes the request. cline checks that
// the base URL is a URL, so llmkey writes the port the daemon listens on
// now. Its runs go through a background hub that the first run starts and
// that keeps that run's environment: the note after setup says so.

const (
	clineProvider = "openai-compatible"
	clineSeed     = "{\n  \"version\": 1,\n  \"providers\": {}\n}\n"
	clineNote     = "cline's requests go through its background hub, which keeps the environment of the cline run that started it: " +
		"stop it (cline hub stop) after this setup, after the daemon moved, or before running cline under another llmkey exec " +
		"(--key, --tag); name a model with cline -m MODEL"
)

var (
	clineLast    = []string{"lastUsedProvider"}
	clineEntry   = []string{"providers", clineProvider}
	clineBaseURL = []string{"providers", clineProvider, "settings", "baseUrl"}
)

// clineFile is where cline keeps its providers' settings.
func clineFile(getenv func(string) string) (string, error) {
	if p := getenv("CLINE_PROVIDER_SETTINGS_PATH"); p != "" {
		return p, nil
	}
	if d := getenv("CLINE_DATA_DIR"); d != "" {
		return filepath.Join(d, "settings", "providers.json"), nil
	}
	return homeFile("CLINE_DIR", ".cline", filepath.Join("data", "settings", "providers.json"))(getenv)
}

func applyCline(data []byte, e setupEnv) ([]byte, error) {
	out, err := jsonSet(data, clineLast, jsonQuote(clineProvider))
	if err != nil {
		return nil, err
	}
	base := jsonQuote(e.ProxyURL + "/openai")
	if _, ok := jsonGet(out, clineEntry); !ok {
		// A provider's entry is whole or cline drops it: its settings
		// name the provider, and it has a time of update.
		entry := `{"settings": {"provider": "` + clineProvider + `", "baseUrl": ` + base + `}, "updatedAt": "1970-01-01T00:00:00.000Z"}`
		return jsonSet(out, clineEntry, entry)
	}
	return jsonSet(out, clineBaseURL, base)
}

// clineScaffold: of the entry setup adds whole, only the base URL is
// llmkey's; cline keeps its provider and time of update as it wants.
func clineScaffold(path []string) bool {
	return len(path) > 2 && path[0] == "providers" && path[1] == clineProvider && path[len(path)-1] != "baseUrl"
}

func checkCline(data []byte, e setupEnv) []finding {
	if data == nil {
		return []finding{{"none of cline's providers goes to the proxy", "llmkey setup cline"}}
	}
	var found []finding
	switch v, _ := jsonGet(data, clineBaseURL); {
	case v == jsonQuote(e.ProxyURL+"/openai"):
	case llmkeyURL.MatchString(v):
		found = append(found, finding{"cline's openai-compatible provider points at another port than the daemon's " + e.ProxyURL, "llmkey setup cline, then cline hub stop"})
	default:
		found = append(found, finding{fmt.Sprintf("cline's openai-compatible provider goes to %s, not the proxy", orNone(v)), "llmkey setup cline"})
	}
	if v, _ := jsonGet(data, clineLast); v != jsonQuote(clineProvider) {
		found = append(found, finding{fmt.Sprintf("cline uses its %s provider, which does not go through llmkey; only openai-compatible does", orNone(v)),
			"cline -P openai-compatible, or llmkey setup cline"})
	}
	return found
}

// clineHubFindings finds cline's background hub running with a key that
// is no llmkey token (it was started outside llmkey exec): cline sends
// its requests from the hub, with the hub's environment, so the proxy
// refuses them. Where /proc is not, nothing is found.
func clineHubFindings(providersPath string) []finding {
	dataDir := filepath.Dir(filepath.Dir(providersPath))
	b, err := os.ReadFile(filepath.Join(dataDir, "locks", "hub", "production.json"))
	var hub struct {
		PID int `json:"pid"`
	}
	if err != nil || json.Unmarshal(b, &hub) != nil || hub.PID <= 0 {
		return nil
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", hub.PID))
	if err != nil {
		return nil
	}
	for _, kv := range strings.Split(string(environ), "\x00") {
		if v, ok := strings.CutPrefix(kv, "OPENAI_API_KEY="); ok && strings.HasPrefix(v, "llmk-") {
			return nil
		}
	}
	return []finding{{fmt.Sprintf("cline's background hub (pid %d) was started outside llmkey exec: cline sends its requests from it, with no llmkey token, and the proxy refuses them", hub.PID),
		"cline hub stop (the next cline run under llmkey exec starts it anew)"}}
}
