// SPDX-License-Identifier: MIT

package fakeprovider

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// Each answer, in each provider's format, reads to llmkey as what it
// stands for: a reply, the key's own rate limit with its wait, the
// organisation's limit, an invalid key, a spent quota.
func TestAnswersReadAsTheyMean(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	routes := map[state.Kind]struct{ path, body string }{
		state.KindOpenAI:    {"/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`},
		state.KindAnthropic: {"/v1/messages", `{"model":"claude-x","max_tokens":5,"messages":[]}`},
		state.KindGemini:    {"/v1beta/models/gemini-x:generateContent", `{"contents":[]}`},
	}
	for kind, rt := range routes {
		for _, tt := range []struct {
			answer  Answer
			class   rotate.Class
			orgWide bool
		}{{Reply, rotate.Success, false}, {RateLimited, rotate.RateLimited, false}, {OrgLimited, rotate.RateLimited, true},
			{Invalid, rotate.InvalidKey, false}, {OutOfQuota, rotate.Quota, false}} {
			key := "sk-" + string(kind) + "-" + tt.answer.String()
			s.Set(key, tt.answer, 7*time.Second)
			req, _ := http.NewRequest(http.MethodPost, s.URL+rt.path, strings.NewReader(rt.body))
			req.Header.Set(wire.For(kind).AuthHeader, wire.AuthValue(kind, key))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			o := wire.Classify(kind, resp.StatusCode, resp.Header, body, time.Now())
			// (A spent quota parks a key's whole group anyway.)
			if o.Class != tt.class || tt.class == rotate.RateLimited && o.OrgWide != tt.orgWide {
				t.Errorf("%s %s: read as %s (organisation-wide %v): %d %s", kind, tt.answer, o.Class, o.OrgWide, resp.StatusCode, body)
			}
			if tt.class == rotate.RateLimited && o.Wait != 7*time.Second {
				t.Errorf("%s %s: a wait of %s, want 7s", kind, tt.answer, o.Wait)
			}
			if tt.answer == Reply && !bytes.Contains(body, []byte("hello")) {
				t.Errorf("%s reply: %s", kind, body)
			}
		}
	}
	if got := s.Served(0); len(got) != 15 || got[0].Key == "" {
		t.Errorf("served %d requests, want 15: %+v", len(got), got)
	}
}

// A stream is asked for and sent as server-sent events, in each format.
func TestStreams(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for path, body := range map[string]string{
		"/v1/chat/completions": `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}`,
		"/v1/responses":        `{"model":"gpt-4o","stream":true}`,
		"/v1/messages":         `{"model":"claude-x","stream":true}`,
		"/v1beta/models/gemini-x:streamGenerateContent": `{}`,
	} {
		resp, err := http.Post(s.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Type") != "text/event-stream" || !bytes.HasPrefix(b, []byte("data: ")) && !bytes.HasPrefix(b, []byte("event: ")) {
			t.Errorf("%s: %s %s", path, resp.Header.Get("Content-Type"), b)
		}
	}
}
