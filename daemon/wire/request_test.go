// SPDX-License-Identifier: MIT

package wire

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/llmkey/llmkey/state"
)

func TestStreamUsageIsAskedForOnlyWhenUnsaid(t *testing.T) {
	tests := []struct {
		kind       state.Kind
		path, body string
		want       bool
	}{
		{state.KindOpenAI, "/chat/completions", `{"model":"m","stream":true}`, true},
		{state.KindOpenAI, "/v1/chat/completions/", `{"model":"m","stream":true,"stream_options":null}`, true},
		{state.KindOpenAI, "/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":false}}`, false},
		{state.KindOpenAI, "/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, false},
		{state.KindOpenAI, "/chat/completions", `{"model":"m"}`, false},
		{state.KindOpenAI, "/responses", `{"model":"m","stream":true}`, false},
		{state.KindAnthropic, "/v1/messages", `{"model":"m","stream":true}`, false},
	}
	for _, tt := range tests {
		info := Inspect(tt.kind, tt.path, []byte(tt.body))
		if info.Model != "m" || info.WantsUsage != tt.want {
			t.Errorf("%s %s %s: model %q, wants usage %v; want %v", tt.kind, tt.path, tt.body, info.Model, info.WantsUsage, tt.want)
		}
	}
	if m := Inspect(state.KindGemini, "/v1beta/models/gemini-2.5-pro:streamGenerateContent", nil).Model; m != "gemini-2.5-pro" {
		t.Errorf("gemini model from the path: %q", m)
	}
	for body, model := range map[string]string{
		`{"messages":[{"role":"user","content":"\"model\": \"x\" } {"}],"model" : "gpt-4o"}`: "gpt-4o",
		`{"model":"caf\u00e9","stream":false}`:                                               "café",
		`{"model":"a","model":"b"}`:                                                          "b", // as encoding/json: the last
		`{"model":"a"`:                                                                       "",
		`["model"]`:                                                                          "",
		`{"model":"a","x":[1,{"y":"]"}],"z":nul`:                                             "",
	} {
		if got := Inspect(state.KindOpenAI, "/chat/completions", []byte(body)).Model; got != model {
			t.Errorf("model of %s: %q, want %q", body, got, model)
		}
	}

	for _, body := range []string{
		`{"model":"m","stream":true,"messages":[{"role":"user","content":"{"}]}`,
		` {"model":"m","stream":true,"stream_options":null}`,
		`{"model":"m","stream":true,"stream_options":{"other":1}}`,
		`{"model":"m","stream":true,"stream_options":{ }}`,
	} {
		info := Inspect(state.KindOpenAI, "/chat/completions", []byte(body))
		if !info.WantsUsage {
			t.Fatalf("%s: usage not wanted", body)
		}
		out := WithStreamUsage([]byte(body), info)
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s became invalid JSON: %s", body, out)
		}
		opts, _ := v["stream_options"].(map[string]any)
		if opts["include_usage"] != true || v["model"] != "m" || v["stream"] != true {
			t.Errorf("%s became %s", body, out)
		}
		if strings.Contains(body, "other") && opts["other"] != float64(1) {
			t.Errorf("the client's own stream_options were lost: %s", out)
		}
		if strings.Contains(body, "messages") && !bytes.HasSuffix(out, []byte(body[1:])) {
			t.Errorf("the rest of the body changed: %s", out)
		}
	}
}

// The scanner agrees with encoding/json on the model, and adding usage to
// a valid body keeps it valid.
func FuzzInspect(f *testing.F) {
	for _, s := range []string{`{"model":"m","stream":true}`, `{"stream":true,"model":"a\"b","stream_options":{"x":[1,"}"]}}`,
		`{"model":"m","stream":true,"stream_options":null,"messages":[{"content":"{\"model\":1}"}]}`, ` { "model" : "m" , "stream" : true } `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		info := Inspect(state.KindOpenAI, "/chat/completions", []byte(body))
		var top map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &top) != nil {
			return
		}
		var want string
		if raw, ok := top["model"]; ok && json.Unmarshal(raw, &want) == nil && info.Model != want {
			t.Errorf("model of %s: %q, encoding/json says %q", body, info.Model, want)
		}
		if info.WantsUsage {
			// Keys compared exactly, as the providers do (encoding/json
			// into a struct would not).
			out := WithStreamUsage([]byte(body), info)
			var after, opts map[string]json.RawMessage
			err := json.Unmarshal(out, &after)
			if err == nil {
				err = json.Unmarshal(after["stream_options"], &opts)
			}
			if err != nil || string(opts["include_usage"]) != "true" {
				t.Errorf("%s became %s (%v)", body, out, err)
			}
		}
	})
}

// A model name from a client keys usage rows and metric labels: it comes
// out valid UTF-8 and of a name's length.
func TestModelNameFitForLabels(t *testing.T) {
	body := []byte("{\"model\":\"gpt-\xff\xfe" + strings.Repeat("é", 150) + "\"}")
	m := Inspect(state.KindOpenAI, "/chat/completions", body).Model
	if !utf8.ValidString(m) || len(m) > maxModelName+3 || !strings.HasPrefix(m, "gpt-") {
		t.Fatalf("model %q (%d bytes)", m, len(m))
	}
	for _, name := range []string{"gpt-4o\u001b[2J\u001b]0;pwned\u0007", "a\u0085b\u009bc", "x\r\ny\u007f"} {
		m := Inspect(state.KindOpenAI, "/chat/completions", []byte(`{"model":"`+name+`"}`)).Model
		if strings.IndexFunc(m, unicode.IsControl) >= 0 || m == "" {
			t.Errorf("model %q kept a control character: %q", name, m)
		}
	}
}
