// SPDX-License-Identifier: MIT

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go"
	"github.com/openai/openai-go/responses"
	"google.golang.org/genai"
)

// TestSDKHelper is not a test of its own: TestOfficialSDKsThroughExec runs
// this test binary under "llmkey exec" with LLMKEY_SDK_HELPER=1, and this
// function then acts as a user's program: the official SDKs, configured by
// nothing but the environment exec set.
func TestSDKHelper(t *testing.T) {
	if os.Getenv("LLMKEY_SDK_HELPER") != "1" {
		return
	}
	ctx := context.Background()
	report := func(name, text string, err error) {
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", name, err)
			return
		}
		fmt.Printf("OK %s %s\n", name, text)
	}

	oa := openai.NewClient()
	chat, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if err == nil {
		report("openai-chat", chat.Choices[0].Message.Content, nil)
	} else {
		report("openai-chat", "", err)
	}

	cs := oa.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var text strings.Builder
	for cs.Next() {
		if ch := cs.Current().Choices; len(ch) > 0 {
			text.WriteString(ch[0].Delta.Content)
		}
	}
	report("openai-chat-stream", text.String(), cs.Err())

	resp, err := oa.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	if err == nil {
		report("openai-responses", resp.OutputText(), nil)
	} else {
		report("openai-responses", "", err)
	}

	rs := oa.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt-4o",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	text.Reset()
	completed := false
	for rs.Next() {
		ev := rs.Current()
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta.OfString)
		case "response.completed":
			completed = ev.Response.Status == "completed"
		}
	}
	if err := rs.Err(); err == nil && !completed {
		report("openai-responses-stream", "", fmt.Errorf("no response.completed event"))
	} else {
		report("openai-responses-stream", text.String(), err)
	}

	an := anthropic.NewClient()
	params := anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 16,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	msg, err := an.Messages.New(ctx, params)
	if err == nil {
		report("anthropic-messages", msg.Content[0].Text, nil)
	} else {
		report("anthropic-messages", "", err)
	}
	as := an.Messages.NewStreaming(ctx, params)
	text.Reset()
	for as.Next() {
		if ev := as.Current(); ev.Type == "content_block_delta" {
			text.WriteString(ev.Delta.Text)
		}
	}
	report("anthropic-messages-stream", text.String(), as.Err())

	gc, err := genai.NewClient(ctx, nil)
	if err != nil {
		report("gemini-client", "", err)
		return
	}
	gr, err := gc.Models.GenerateContent(ctx, "gemini-x", genai.Text("hi"), nil)
	if err == nil {
		report("gemini-generate", gr.Text(), nil)
	} else {
		report("gemini-generate", "", err)
	}
	text.Reset()
	var serr error
	for r, err := range gc.Models.GenerateContentStream(ctx, "gemini-x", genai.Text("hi"), nil) {
		if err != nil {
			serr = err
			break
		}
		text.WriteString(r.Text())
	}
	report("gemini-generate-stream", text.String(), serr)
}

// The official Go SDKs, run under "llmkey exec" with only the environment it set, reach
// the fake provider through the proxy; the provider sees the real keys in
// each provider's own header and never the local token.
// sdkRequests is how many requests one run of TestSDKHelper makes.
const sdkRequests = 8

func TestOfficialSDKsThroughExec(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")}
	u.writeKeyfile(fake.URL, keys)

	// A user whose shell already holds real keys: exec must replace them.
	env := []string{"LLMKEY_SDK_HELPER=1", "OPENAI_API_KEY=" + u.canary("sk-old-"), "GOOGLE_API_KEY=" + u.canary("AIzaOld"),
		"ANTHROPIC_AUTH_TOKEN=" + u.canary("sk-ant-old-")}
	r := u.run(nil, env, "exec", "--", os.Args[0], "-test.run=^TestSDKHelper$", "-test.count=1")
	for _, name := range []string{"openai-chat", "openai-chat-stream", "openai-responses", "openai-responses-stream", "anthropic-messages",
		"anthropic-messages-stream", "gemini-generate", "gemini-generate-stream"} {
		if !strings.Contains(r.stdout, "OK "+name+" hello\n") {
			u.errorf("%s did not succeed with the text %q through the proxy", name, "hello")
		}
	}
	if t.Failed() {
		u.fatalf("SDK program output:\n%v", r)
	}

	token := u.token()
	wantHeader := map[string]func(seenRequest) string{
		"/v1/chat/completions": func(s seenRequest) string { return s.Auth },
		"/v1/responses":        func(s seenRequest) string { return s.Auth },
		"/v1/messages":         func(s seenRequest) string { return s.APIKey },
	}
	seen := fake.requests()
	if len(seen) != sdkRequests {
		u.fatalf("the fake provider saw %d requests, want %d: %+v", len(seen), sdkRequests, seen)
	}
	for _, s := range seen {
		if strings.Contains(fmt.Sprint(s), token) {
			u.errorf("the local token reached the provider: %+v", s)
		}
		switch {
		case strings.HasPrefix(s.Path, "/v1beta/models/gemini-x:"):
			if s.GoogKey != keys["gemini"] || s.Auth != "" || s.APIKey != "" || strings.Contains(s.Query, "key=") {
				u.errorf("gemini request %s: want only x-goog-api-key with the real key: %+v", s.Path, s)
			}
		case s.Path == "/v1/messages":
			if s.APIKey != keys["anthropic"] || s.Auth != "" || s.GoogKey != "" {
				u.errorf("anthropic request: want only x-api-key with the real key: %+v", s)
			}
		default:
			if get := wantHeader[s.Path]; get == nil || get(s) != "Bearer "+keys["openai"] || s.APIKey != "" || s.GoogKey != "" {
				u.errorf("openai request %s: want only Authorization: Bearer with the real key: %+v", s.Path, s)
			}
		}
	}
}

// writeKeyfile writes a keyfile with one key per provider, every provider
// pointed at the fake, listening on a free port. Every request is logged,
// so that the log's canary check sees the request lines too.
func (u *user) writeKeyfile(fakeURL string, keys map[string]string) {
	u.t.Helper()
	var b strings.Builder
	b.WriteString("[daemon]\nlisten = \"127.0.0.1:0\"\nlog_requests = true\n\n")
	b.WriteString("[provider.openai]\nbase_url = \"" + fakeURL + "/v1\"\n\n")
	b.WriteString("[provider.anthropic]\nbase_url = \"" + fakeURL + "\"\n\n")
	b.WriteString("[provider.gemini]\nbase_url = \"" + fakeURL + "\"\n")
	for _, p := range []string{"openai", "anthropic", "gemini"} {
		if k, ok := keys[p]; ok {
			fmt.Fprintf(&b, "\n[[key]]\nprovider = %q\nname = \"work\"\nsecret = %q\n", p, k)
		}
	}
	writeFile(u.t, u.keyfile(), b.String(), 0o600)
}

// token is the local token, as the daemon created it.
func (u *user) token() string {
	u.t.Helper()
	return strings.TrimSpace(readFile(u.t, u.stateDir()+"/token"))
}

// Variables a user's shell may hold that would send an SDK around the
// proxy (ANTHROPIC_API_URL, GOOGLE_GENAI_USE_VERTEXAI) or with another
// organization (OPENAI_ORG_ID, OPENAI_PROJECT_ID) are cleared by exec:
// every SDK still goes through llmkey, and only the organization the
// key names reaches the upstream.
func TestSDKsThroughExecDespiteTheirVariables(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-"), "gemini": u.canary("AIza")}
	u.writeKeyfile(fake.URL, keys)
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), "name = \"work\"\nsecret = \""+keys["openai"]+"\"\n",
		"name = \"work\"\nsecret = \""+keys["openai"]+"\"\norganization = \"org-mine\"\n", 1), 0o600)
	env := []string{"LLMKEY_SDK_HELPER=1", "ANTHROPIC_API_URL=http://127.0.0.1:9", "GOOGLE_GENAI_USE_VERTEXAI=true",
		"GOOGLE_CLOUD_PROJECT=p", "GOOGLE_CLOUD_LOCATION=us-central1", "OPENAI_ORG_ID=org-foreign", "OPENAI_PROJECT_ID=proj-foreign"}
	r := u.run(nil, env, "exec", "--", os.Args[0], "-test.run=^TestSDKHelper$", "-test.count=1")
	for _, name := range []string{"openai-chat", "openai-responses", "anthropic-messages", "gemini-generate"} {
		if !strings.Contains(r.stdout, "OK "+name+" hello\n") {
			u.errorf("%s did not get through the proxy", name)
		}
	}
	for _, s := range fake.requests() {
		if strings.HasPrefix(s.Path, "/v1/chat") || strings.HasPrefix(s.Path, "/v1/responses") {
			if s.Org != "org-mine" {
				u.errorf("%s carried organization/project %q, want only the key's org-mine", s.Path, s.Org)
			}
		} else if s.Org != "" {
			u.errorf("%s carried organization/project %q", s.Path, s.Org)
		}
	}
	if t.Failed() {
		u.fatalf("SDK program output:\n%v", r)
	}
}
