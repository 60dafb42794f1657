package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A token scoped to one provider's keys opens no WebSocket on another
// provider: the handshake is refused as a request would be.
func TestScopedTokenOpensNoSocketElsewhere(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	keys := map[string]string{"openai": u.canary("sk-proj-"), "anthropic": u.canary("sk-ant-api03-")}
	u.writeKeyfile(fake.URL, keys)
	// The token lives as long as the command it was issued for.
	cmd := exec.Command(llmkeyBin, "exec", "--key", "anthropic/work", "--", "sh", "-c", `echo "$LLMKEY_URL $LLMKEY_TOKEN"; exec sleep 600`)
	cmd.Env = u.env
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	base, scoped, _ := strings.Cut(strings.TrimSpace(line), " ")
	if !strings.HasPrefix(scoped, "llmk-") || scoped == u.token() {
		t.Fatalf("no scoped token from exec --key: %q", line)
	}
	_, resp, err := websocket.DefaultDialer.Dial(strings.Replace(base, "http", "ws", 1)+"/openai/responses",
		http.Header{"Authorization": {"Bearer " + scoped}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Llmkey-Error") != "not-selected" {
		t.Fatalf("a socket to a provider outside the token's selection: %v %+v", err, resp)
	}
	if fake.count(keys["openai"]) != 0 {
		t.Error("the openai key reached the upstream for a token scoped to anthropic")
	}
}

// deflated is n zero bytes compressed as permessage-deflate carries a
// message: a thousandfold smaller on the wire than once inflated.
func deflated(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	zeros := make([]byte, 1<<20)
	for range n >> 20 {
		fw.Write(zeros)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// compressedFrame is one final, compressed text frame holding payload,
// masked as a client must send it when mask is set.
func compressedFrame(payload []byte, mask bool) []byte {
	hdr := []byte{0x80 | 0x40 | websocket.TextMessage} // FIN, RSV1 (compressed), text
	var m byte
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, m|byte(n))
	case n < 1<<16:
		hdr = append(hdr, m|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, m|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	if !mask {
		return append(hdr, payload...)
	}
	key := [4]byte{0x11, 0x22, 0x33, 0x44}
	hdr = append(hdr, key[:]...)
	out := append(hdr, payload...)
	for i := range payload {
		out[len(hdr)+i] ^= key[i%4]
	}
	return out
}

// closeCode waits for the close that ends c and returns its code (0: the
// connection ended without one).
func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Logf("the socket ended without a close: %v", err)
		return 0
	}
}

// Compression is negotiated with neither side, so no message can
// inflate past what came on the wire: a compressed frame sent anyway is
// refused unread, and a message over max_body_mb, from a client or from a
// hostile upstream, closes the socket with 1009 once it passes the limit.
// The daemon's memory stays within max_buffered_mb and a margin, and it
// serves other requests meanwhile.
func TestWebSocketMessagesAreBounded(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	bomb := deflated(t, 64<<20)
	big := bytes.Repeat([]byte("x"), 16<<20)
	offered := make(chan string, 4)
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offered <- r.Header.Get("Sec-Websocket-Extensions")
		c, err := (&websocket.Upgrader{EnableCompression: true}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if strings.Contains(string(msg), "bomb") {
			c.NetConn().Write(compressedFrame(bomb, false))
		} else {
			c.WriteMessage(websocket.TextMessage, big)
		}
		closeCode(t, c)
	}))
	t.Cleanup(hostile.Close)
	a, b := u.canary("sk-proj-"), u.canary("sk-or-")
	writeFile(t, u.keyfile(), fmt.Sprintf(`[daemon]
listen = "127.0.0.1:0"
max_body_mb = 4
max_buffered_mb = 16

[provider.openai]
base_url = "%s/v1"

[provider.hostile]
kind = "openai"
base_url = "%s/v1"

[[key]]
provider = "openai"
name = "work"
secret = %q

[[key]]
provider = "hostile"
name = "one"
secret = %q
`, fake.URL, hostile.URL, a, b), 0o600)
	env := u.proxyEnv()
	base, token := env["LLMKEY_URL"], env["LLMKEY_TOKEN"]
	drain(t, chat(t, base, token, nil)) // warm up
	pid := u.daemonPID()
	before := procKB(t, pid, "VmRSS")

	dialer := websocket.Dialer{EnableCompression: true}
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	wsBase := strings.Replace(base, "http", "ws", 1)
	attacks := []struct {
		name, path string
		send       func(c *websocket.Conn)
		want       int
	}{
		{"a client's compressed frame", "/openai/responses", func(c *websocket.Conn) { c.NetConn().Write(compressedFrame(bomb, true)) }, websocket.CloseProtocolError},
		{"a client's message over max_body_mb", "/openai/responses", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, big) }, websocket.CloseMessageTooBig},
		{"an upstream's compressed frame", "/hostile/responses", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, []byte(`{"type":"bomb"}`)) }, websocket.CloseInternalServerErr},
		{"an upstream's message over max_body_mb", "/hostile/responses", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, []byte(`{}`)) }, websocket.CloseMessageTooBig},
	}
	var wg sync.WaitGroup
	codes := make([]int, len(attacks))
	for i, at := range attacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, resp, err := dialer.Dial(wsBase+at.path, hdr)
			if err != nil {
				t.Errorf("%s: dial: %v", at.name, err)
				return
			}
			defer c.Close()
			if ext := resp.Header.Get("Sec-Websocket-Extensions"); ext != "" {
				t.Errorf("%s: the daemon took up %q", at.name, ext)
			}
			at.send(c)
			codes[i] = closeCode(t, c)
		}()
	}
	for range 5 { // other clients are served meanwhile
		if resp := chat(t, base, token, nil); resp.StatusCode != 200 {
			t.Errorf("a request during the attack: %d", resp.StatusCode)
		} else {
			drain(t, resp)
		}
	}
	wg.Wait()
	peak := checkPeak(t, pid, before, 16)
	t.Logf("close codes %v, daemon RSS peak %d kB", codes, peak)
	for i, at := range attacks {
		if codes[i] != at.want {
			t.Errorf("%s: closed with %d, want %d", at.name, codes[i], at.want)
		}
	}
	for range 2 {
		if ext := <-offered; ext != "" {
			t.Errorf("the daemon offered the upstream %q", ext)
		}
	}
}

// checkPeak fails t when the daemon's peak RSS went past its memory
// budget, max_buffered_mb plus a 64 MiB margin for everything else; it
// returns the peak, in kB. Under the race detector, whose shadow memory
// is several times what the program allocates, the peak is compared as
// growth over before, against twice the budget (an unbounded message or
// body still goes far past that).
func checkPeak(t *testing.T, pid, before, bufferedMB int) int {
	t.Helper()
	peak := procKB(t, pid, "VmHWM")
	limit := (bufferedMB + 64) << 10
	t.Logf("daemon RSS before %d kB, peak %d kB (+%d kB); budget %d kB", before, peak, peak-before, limit)
	switch {
	case !raceEnabled && peak >= limit:
		t.Errorf("the daemon's peak RSS was %d kB, over max_buffered_mb + 64 MiB (%d kB)", peak, limit)
	case raceEnabled && peak-before >= 2*limit:
		t.Errorf("the daemon's RSS grew by %d kB, over twice max_buffered_mb + 64 MiB under the race detector (%d kB)", peak-before, 2*limit)
	}
	return peak
}

// A WebSocket client that stops reading is let go after client_timeout,
// as a stream's is, not held for stream_idle_timeout while the upstream
// keeps talking.
func TestWebSocketClientThatStopsReading(t *testing.T) {
	u := newUser(t)
	ended := make(chan struct{})
	talker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer close(ended)
		defer c.Close()
		msg := []byte(`{"type":"response.output_text.delta","delta":"` + strings.Repeat("x", 64<<10) + `"}`)
		for {
			c.SetWriteDeadline(time.Now().Add(time.Minute))
			if c.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
	}))
	t.Cleanup(talker.Close)
	writeFile(t, u.keyfile(), fmt.Sprintf(`[daemon]
listen = "127.0.0.1:0"
client_timeout = "2s"
stream_idle_timeout = "10m"

[provider.openai]
base_url = "%s/v1"

[[key]]
provider = "openai"
name = "work"
secret = %q
`, talker.URL, u.canary("sk-proj-")), 0o600)
	env := u.proxyEnv()
	c, _, err := websocket.DefaultDialer.Dial(strings.Replace(env["LLMKEY_URL"], "http", "ws", 1)+"/openai/responses",
		http.Header{"Authorization": {"Bearer " + env["LLMKEY_TOKEN"]}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // and never read
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("a client that stopped reading still held its socket 30 s later (client_timeout 2s)")
	}
}

func drain(t *testing.T, resp *http.Response) {
	t.Helper()
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
