// SPDX-License-Identifier: MIT

package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmkey/llmkey/state"
)

// A client that hangs up at the end of an answer (Codex after
// response.completed, a client that stops at finish_reason) has had a
// whole answer: it counts as complete, with the usage the upstream sent
// after the client stopped reading.
func TestAnswerEndedWhenTheClientHangsUpAtItsEnd(t *testing.T) {
	for _, tt := range []struct {
		name, stopAt string
		events       []string
	}{
		{"chat stops at finish_reason", `"finish_reason":"stop"`, []string{
			`{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}`,
			`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
			"pause",
			`{"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3}}`,
			"[DONE]"}},
		{"responses stops at response.completed", `"response.completed"`, []string{
			`{"type":"response.output_text.delta","delta":"hi"}`,
			`{"type":"response.completed","response":{"usage":{"input_tokens":11,"output_tokens":3}}}`,
			"pause"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, url := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				for _, ev := range tt.events {
					if ev == "pause" {
						time.Sleep(200 * time.Millisecond)
						continue
					}
					io.WriteString(w, "data: "+ev+"\n\n")
					w.(http.Flusher).Flush()
				}
			}))
			req, _ := http.NewRequestWithContext(context.Background(), "POST", url+"/openai/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
			req.Header.Set("Authorization", "Bearer llmk-local-test")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			rd := bufio.NewReader(resp.Body)
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(line, tt.stopAt) {
					break
				}
			}
			resp.Body.Close() // hangs up before the upstream's end
			var got state.Counts
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				d.usage.mu.Lock()
				got = state.Counts{}
				for _, c := range d.usage.rows {
					got.Add(c)
				}
				d.usage.mu.Unlock()
				if got.Requests > 0 {
					break
				}
			}
			if got.Requests != 1 || got.Successes != 1 || got.Partial != 0 || got.Input != 11 || got.Output != 3 {
				t.Errorf("counted %+v", got)
			}
		})
	}
}
