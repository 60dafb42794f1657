package wire

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// Every kind the keyfile knows has its wire format here: the header its
// key travels in, and llmkey's own errors in its SDK's error shape. A kind
// added to state without a row here fails.
func TestEveryKindHasAWireFormat(t *testing.T) {
	formats := map[state.Kind]struct {
		header, value string
		message       func(body map[string]any) any
	}{
		state.KindOpenAI:    {"Authorization", "Bearer sk-x", func(b map[string]any) any { return b["error"].(map[string]any)["message"] }},
		state.KindAnthropic: {"X-Api-Key", "sk-x", func(b map[string]any) any { return b["error"].(map[string]any)["message"] }},
		state.KindGemini:    {"X-Goog-Api-Key", "sk-x", func(b map[string]any) any { return b["error"].(map[string]any)["message"] }},
	}
	for _, k := range state.Kinds() {
		f, ok := formats[k]
		if !ok {
			t.Errorf("no wire format for kind %q", k)
			continue
		}
		if AuthHeader(k) != f.header || AuthValue(k, "sk-x") != f.value || http.CanonicalHeaderKey(f.header) != f.header {
			t.Errorf("%s: key in %s: %s", k, AuthHeader(k), AuthValue(k, "sk-x"))
		}
		rec := httptest.NewRecorder()
		WriteError(rec, k, Error{Status: 429, Code: Overloaded, Message: "wait"})
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 429 || rec.Header().Get("X-Llmkey-Error") != "overloaded" {
			t.Fatalf("%s: %d %s %v", k, rec.Code, rec.Body, err)
		}
		if msg, _ := f.message(body).(string); !strings.HasPrefix(msg, "llmkey: wait") {
			t.Errorf("%s error body: %s", k, rec.Body)
		}
	}
}

// The local token is found wherever an SDK puts its key.
func TestCredentials(t *testing.T) {
	for _, set := range []func(r *http.Request){
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") },
		func(r *http.Request) { r.Header.Set("x-api-key", "tok") },
		func(r *http.Request) { r.Header.Set("x-goog-api-key", "tok") },
		func(r *http.Request) { r.URL.RawQuery = "alt=sse&key=tok" },
	} {
		r := httptest.NewRequest("POST", "http://127.0.0.1/gemini/x", nil)
		set(r)
		if c := Credentials(r); len(c) != 1 || c[0] != "tok" {
			t.Errorf("%v: %v", r.Header, c)
		}
	}
}
