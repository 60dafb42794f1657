package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialResponses opens a Responses socket through the proxy.
func dialResponses(t *testing.T, base, token string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(strings.Replace(base, "http", "ws", 1)+"/openai/responses",
		http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUntil reads a socket's messages until one holds want, and returns
// them all.
func readUntil(t *testing.T, c *websocket.Conn, want string) []string {
	t.Helper()
	var got []string
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s, after %q: %v", want, got, err)
		}
		got = append(got, string(msg))
		if strings.Contains(string(msg), want) {
			return got
		}
	}
}

// A response that failed on the upstream's side after it began reaches
// the client as it came, and is counted as the failure it is: the key
// is judged as for the same HTTP answer.
func TestSocketResponseFailedIsAFailure(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a := u.canary("sk-proj-a-")
	fake.onSocket(a, `{"type":"response.created","response":{"id":"resp_9","status":"in_progress","model":"gpt-5"}}`,
		`{"type":"response.failed","response":{"id":"resp_9","status":"failed","model":"gpt-5","error":{"code":"rate_limit_exceeded","message":"Rate limit reached. Please try again in 20s."},"usage":null}}`)
	base, token := u.oneKey(fake.URL, a)
	c := dialResponses(t, base, token)
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"response.create","model":"gpt-5","input":"hi"}`))
	got := readUntil(t, c, "response.failed")
	if len(got) != 2 {
		t.Errorf("the client saw %q", got)
	}
	c.Close()
	if k := u.keyStatus("openai", "a"); k["state"] != "cooling" {
		t.Errorf("key a after a failed response that says rate limited: %v", k)
	}
	rep := u.usage("--by", "key")
	if len(rep.Rows) != 1 || rep.Rows[0].Requests != 1 || rep.Rows[0].Successes != 0 || rep.Rows[0].Failures["rate-limited"] != 1 {
		t.Errorf("usage of a failed response: %+v", rep.Rows)
	}
}

// A refused request that refers to state only its key has (a previous
// response) cannot go to another key: the client gets the refusal, and
// the key cools. The next request that refers to nothing moves to the
// other key before the client hears of a refusal.
func TestSocketRefusalMovesOnlyWhatCanMove(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	a, b := u.canary("sk-proj-a-"), u.canary("sk-proj-b-")
	fake.onSocket(a, `{"type":"error","status":429,"error":{"type":"rate_limit_exceeded","code":"rate_limit_exceeded","message":"Rate limit reached"},"headers":{"retry-after":"30"}}`)
	base, token := u.twoKeys(fake.URL, "openai", `strategy = "fill-first"`, a, b)
	c := dialResponses(t, base, token)
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"response.create","model":"gpt-5","previous_response_id":"resp_1","input":"more"}`))
	if got := readUntil(t, c, `"type":"error"`); len(got) != 1 || !strings.Contains(got[0], `"status":429`) {
		t.Errorf("a refused turn of a stored conversation: %q", got)
	}
	if k := u.keyStatus("openai", "a"); k["state"] != "cooling" {
		t.Errorf("key a after a 429 inside its socket: %v", k)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"response.create","model":"gpt-5","input":"hi"}`))
	got := readUntil(t, c, "response.completed")
	for _, m := range got {
		if strings.Contains(m, `"type":"error"`) {
			t.Errorf("the client saw the refusal of a request that moved: %q", got)
		}
	}
	c.Close()
	served := map[string]int{}
	for _, row := range u.usage("--by", "key").Rows {
		served[row.Key] = int(row.Successes)
		if row.Key == "a" && row.Failures["rate-limited"] != 2 {
			t.Errorf("key a: %+v", row)
		}
	}
	if served["b"] != 1 || served["a"] != 0 {
		t.Errorf("served: %v", served)
	}
}
