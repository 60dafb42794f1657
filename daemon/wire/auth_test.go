package wire

import (
	"regexp"

	"encoding/json"
	"github.com/llmkey/llmkey/rotate"
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
		if c, ok := Credential(r); !ok || c != "tok" {
			t.Errorf("%v: %v", r.Header, c)
		}
	}
	// The same key in several places is one; two keys are none, and so is
	// an Authorization that is no bearer token.
	r := httptest.NewRequest("POST", "http://127.0.0.1/gemini/x?key=tok", nil)
	r.Header.Set("Authorization", "Bearer tok")
	r.Header.Set("X-Goog-Api-Key", "tok")
	if c, ok := Credential(r); !ok || c != "tok" {
		t.Errorf("the same key thrice: %q %v", c, ok)
	}
	r.Header.Set("X-Api-Key", "other")
	if c, ok := Credential(r); ok {
		t.Errorf("two keys: %q", c)
	}
	r = httptest.NewRequest("POST", "http://127.0.0.1/openai/x", nil)
	r.Header.Set("Authorization", "Basic dG9rOg==")
	if c, ok := Credential(r); ok {
		t.Errorf("basic auth: %q", c)
	}
	plain := httptest.NewRequest("POST", "http://127.0.0.1/openai/x", nil)
	plain.Header.Set("Authorization", "Bearer tok")
	if n := testing.AllocsPerRun(100, func() { Credential(plain) }); n != 0 {
		t.Errorf("a bearer token costs %v allocations", n)
	}
}

// The local token never goes upstream in the query, however the query is
// written; every other parameter stays as the client wrote it.
func TestStripCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"key=TOKEN":             "",
		"alt=sse&key=TOKEN":     "alt=sse",
		"key=TOKEN&a;b":         "a;b",
		"key=TOKEN&%zz":         "%zz",
		"%6Bey=TOKEN&x=1":       "x=1",
		"KEY=TOKEN&x=%20":       "x=%20",
		"key=TOKEN;x=1&y=2":     "y=2",
		"monkey=1&keys=2":       "monkey=1&keys=2",
		"alt=sse&b=%2F&c":       "alt=sse&b=%2F&c",
		"a=1&key=TOKEN&key=two": "a=1",
	} {
		if got := StripCredentials(in); got != want || strings.Contains(got, "TOKEN") {
			t.Errorf("StripCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every code llmkey answers with is documented once, denial codes
// included, with its status first.
func TestEveryCodeIsDocumented(t *testing.T) {
	codes := []Code{BadToken, BadHost, BadOrigin, BadPath, NotSelected, UnknownProvider, Draining, UpstreamUnreachable,
		UpstreamTimeout, Overloaded, BodyTooLarge, UpstreamLeak, UpstreamIncomplete, AnswerTooLarge}
	for _, d := range rotate.DenialCodes() {
		codes = append(codes, Code(d))
	}
	doc := map[Code]string{}
	for _, e := range CodeDoc {
		if _, dup := doc[e.Code]; dup {
			t.Errorf("%s is documented twice", e.Code)
		}
		doc[e.Code] = e.Meaning
	}
	for _, c := range codes {
		if m, ok := doc[c]; !ok {
			t.Errorf("%s is not in CodeDoc", c)
		} else if c != UpstreamLeak && !regexp.MustCompile(`^\d{3}: `).MatchString(m) {
			t.Errorf("%s: %q does not begin with its status", c, m)
		}
	}
	if len(doc) != len(codes) {
		t.Errorf("CodeDoc has %d codes, llmkey answers with %d", len(doc), len(codes))
	}
}

// Every built-in provider has what the wire package knows of it: its
// kind's format and its SDKs' variables. A provider added to state's
// table without them fails here, as the fake one below does.
func TestEveryBuiltinProviderHasItsWireFacts(t *testing.T) {
	var builtins []state.Provider
	for _, n := range state.BuiltinNames() {
		p, _ := state.Builtin(n)
		builtins = append(builtins, p)
	}
	if missing := MissingFacts(builtins); len(missing) > 0 {
		t.Errorf("missing wire facts:\n%s", strings.Join(missing, "\n"))
	}
	newcomer := state.Provider{Name: "newcomer", Kind: state.KindOpenAI, BaseURL: "https://api.newcomer.example/v1"}
	odd := state.Provider{Name: "odd", Kind: "smoke-signals", BaseURL: "https://odd.example"}
	missing := MissingFacts(append(builtins, newcomer, odd))
	if len(missing) != 3 || !strings.Contains(missing[0], "newcomer: no SDK variables") ||
		!strings.Contains(missing[1], `odd: no wire format for kind "smoke-signals"`) || !strings.Contains(missing[2], "odd: no SDK variables") {
		t.Errorf("a provider without its facts: %q", missing)
	}
	for _, e := range providerEnvs {
		if _, ok := state.Builtin(e.Provider); !ok {
			t.Errorf("SDK variables for %s, which is no built-in provider", e.Provider)
		}
	}
	if v := ImportVariables(); len(v) < len(builtins) || v[0] != [2]string{"OPENAI_API_KEY", "openai"} {
		t.Errorf("import's variables: %v", v)
	}
}
