// SPDX-License-Identifier: MIT

package main

import (
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
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

// frames reads one data message's frames off a raw connection and says
// how many it came in.
func frames(t *testing.T, r io.Reader) (int, []byte) {
	t.Helper()
	var msg []byte
	for n := 1; ; n++ {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		size := uint64(h[1] & 0x7f)
		switch size {
		case 126:
			var b [2]byte
			io.ReadFull(r, b[:])
			size = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			io.ReadFull(r, b[:])
			size = binary.BigEndian.Uint64(b[:])
		}
		var mask [4]byte
		if h[1]&0x80 != 0 {
			io.ReadFull(r, mask[:])
		}
		payload := make([]byte, size)
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if h[1]&0x80 != 0 {
			for i := range payload {
				payload[i] ^= mask[i%4]
			}
		}
		msg = append(msg, payload...)
		if h[0]&0x80 != 0 { // FIN
			return n, msg
		}
	}
}

// A large message goes on in the frames it came in, both ways: an
// upstream that reads a message as one frame is not left waiting for the
// rest of a message cut into pieces.
func TestSocketMessageKeepsItsFrames(t *testing.T) {
	u := newUser(t)
	msg := `{"type":"response.create","model":"gpt-5","input":"` + strings.Repeat("x", 64<<10) + `"}`
	upFrames := make(chan int, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{WriteBufferSize: 1 << 20}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		n, got := frames(t, c.NetConn())
		if string(got) != msg {
			t.Errorf("the upstream got %d bytes, not the message", len(got))
		}
		upFrames <- n
		c.WriteMessage(websocket.TextMessage, []byte(msg))
		c.ReadMessage()
	}))
	t.Cleanup(up.Close)
	base, token := u.oneKey(up.URL, u.canary("sk-proj-"))
	c, _, err := (&websocket.Dialer{WriteBufferSize: 1 << 20}).Dial(strings.Replace(base, "http", "ws", 1)+"/openai/responses",
		http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte(msg)) // one frame: the buffer holds it whole
	select {
	case n := <-upFrames:
		if n != 1 {
			t.Errorf("a 64 KiB message sent in one frame reached the upstream in %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream got no message")
	}
	c.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, got := frames(t, c.NetConn()); n != 1 || string(got) != msg {
		t.Errorf("the upstream's 64 KiB message reached the client in %d frames (%d bytes)", n, len(got))
	}
}
