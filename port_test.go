// SPDX-License-Identifier: MIT

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A squatter is another user's program that takes the proxy's port the
// moment it is free: it tries to bind it every 2 ms, then holds it and
// answers nothing, printing "bound" once and "accepted" for each
// connection it gets. It runs as this test binary, before TestMain.
func init() {
	if addr := os.Getenv("LLMKEY_SQUAT"); addr != "" {
		squat(addr)
	}
}

func squat(addr string) {
	for {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		fmt.Println("bound")
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			fmt.Println("accepted")
			c.Close()
		}
	}
}

// squatter is a squat run by o, and what it said.
type squatter struct {
	bound    chan struct{} // closed once it holds the port
	accepted atomic.Int64
}

func (o *otherUser) startSquatter(t *testing.T, addr string) *squatter {
	t.Helper()
	cmd := o.command("LLMKEY_SQUAT=" + addr)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sq := &squatter{bound: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			switch sc.Text() {
			case "bound":
				close(sq.bound)
			case "accepted":
				sq.accepted.Add(1)
			}
		}
	}()
	return sq
}

// freeAddr is a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// listenOn makes u's keyfile name addr as the proxy's [daemon] listen.
func (u *user) listenOn(addr string) {
	u.t.Helper()
	kf := readFile(u.t, u.keyfile())
	if !strings.Contains(kf, `listen = "127.0.0.1:0"`) {
		u.fatalf("the keyfile has no listen line to change:\n%s", kf)
	}
	writeFile(u.t, u.keyfile(), strings.Replace(kf, `listen = "127.0.0.1:0"`, `listen = "`+addr+`"`, 1), 0o600)
}

// tool sends requests through the proxy, each on a connection of its
// own, until stopped; it counts those served and keeps what went wrong.
type tool struct {
	served, duringRestart atomic.Int64
	restarting            atomic.Bool
	mu                    sync.Mutex
	failures              []string
	stop                  chan struct{}
	done                  sync.WaitGroup
}

func runTool(base, token string, workers int) *tool {
	tl := &tool{stop: make(chan struct{})}
	client := &http.Client{Timeout: time.Minute}
	for range workers {
		tl.done.Add(1)
		go func() {
			defer tl.done.Done()
			for {
				select {
				case <-tl.stop:
					return
				default:
				}
				during := tl.restarting.Load()
				req, _ := http.NewRequest("POST", base+"/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Close = true
				resp, err := client.Do(req)
				if err != nil {
					tl.fail(err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("X-Llmkey-Key") == "" {
					tl.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
					continue
				}
				tl.served.Add(1)
				if during {
					tl.duringRestart.Add(1)
				}
			}
		}()
	}
	return tl
}

func (tl *tool) fail(s string) {
	tl.mu.Lock()
	tl.failures = append(tl.failures, s)
	tl.mu.Unlock()
}

// A restart hands the proxy's port on from one daemon to the next and
// never lets it go: another user who tries to bind it every 2 ms gets
// it not once in 20 restarts (nor in the reloads between them, which
// keep the same listen), and a tool that sends requests all along has
// every one of them served by llmkey.
func TestRestartNeverLetsThePortGo(t *testing.T) {
	o := newOtherUser(t)
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	addr := freeAddr(t)
	u.listenOn(addr)
	mustSucceed(t, u.llmkey("start"))
	sq := o.startSquatter(t, addr)

	tl := runTool("http://"+addr, u.token(), 2)
	for i := range 20 {
		tl.restarting.Store(true)
		r := u.llmkey("restart")
		tl.restarting.Store(false)
		if r.code != 0 || !strings.Contains(r.stderr, "proxy at http://"+addr+": its port was handed on, never closed") {
			close(tl.stop)
			t.Fatalf("restart %d: %v", i, r)
		}
		if i%5 == 4 { // an edit that keeps the listen: the reload keeps the socket
			writeFile(t, u.keyfile(), readFile(t, u.keyfile())+"# edited\n", 0o600)
			mustSucceed(t, u.llmkey("reload"))
		}
	}
	close(tl.stop)
	tl.done.Wait()
	if len(tl.failures) > 0 {
		t.Errorf("%d of the tool's requests were not served by llmkey (%d were), the first: %s", len(tl.failures), tl.served.Load(), tl.failures[0])
	}
	if tl.duringRestart.Load() == 0 {
		t.Errorf("the tool made no request during a restart (%d in all): the test proves nothing", tl.served.Load())
	}
	if n := sq.accepted.Load(); n > 0 {
		t.Errorf("the other user's program accepted %d connections", n)
	}
	select {
	case <-sq.bound:
		t.Errorf("the other user's program bound the port during the restarts")
	default:
	}
	t.Logf("%d requests served, %d of them sent during a restart", tl.served.Load(), tl.duringRestart.Load())
}

// When the daemon is not there to hold the port (stopped, or after a
// crash) and another user takes it, every command that would send a
// tool there names that user: start, exec, status and doctor.
func TestAnotherUsersPortIsNamed(t *testing.T) {
	o := newOtherUser(t)
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	addr := freeAddr(t)
	u.listenOn(addr)
	sq := o.startSquatter(t, addr)
	select {
	case <-sq.bound:
	case <-time.After(10 * time.Second):
		t.Fatal("the other user's program never bound the port")
	}
	who := fmt.Sprintf("%s (uid %d)", o.name, o.uid)
	for _, c := range []struct {
		args []string
		out  func(result) string
	}{
		{[]string{"start"}, func(r result) string { return r.stderr }},
		{[]string{"exec", "--", "true"}, func(r result) string { return r.stderr }},
		{[]string{"status"}, func(r result) string { return r.stdout }},
		{[]string{"doctor"}, func(r result) string { return r.stdout }},
	} {
		r := u.llmkey(c.args...)
		if r.code == 0 || !strings.Contains(c.out(r), "another user, "+who) {
			t.Errorf("llmkey %s with the port held by %s: %v", strings.Join(c.args, " "), who, r)
		}
	}
	if r := u.llmkey("start"); !strings.Contains(r.stderr, "hint: tools pointed at it would send that user their prompts and token") ||
		!strings.Contains(r.stderr, "llmkey service install") {
		t.Errorf("start does not say what the other user's port means, nor what to do: %v", r)
	}
	if st, code := u.status(); code != 3 || !strings.Contains(fmt.Sprint(st["problems"]), who) {
		t.Errorf("status --json with the port held by %s: exit %d %v", who, code, st)
	}
	if n := sq.accepted.Load(); n > 0 {
		t.Errorf("llmkey connected to the other user's port %d times", n)
	}
	if n := u.countDaemons(); n != 0 {
		t.Errorf("%d daemons left running", n)
	}
}

// A restart after [daemon] listen changed moves the proxy there: the
// next daemon lets the old port go and says where it is now.
func TestRestartMovesToANewListen(t *testing.T) {
	u := newUser(t)
	fake := newFakeProvider(t)
	u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
	before, after := freeAddr(t), freeAddr(t)
	u.listenOn(before)
	mustSucceed(t, u.llmkey("start"))
	writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), before, after, 1), 0o600)
	r := mustSucceed(t, u.llmkey("restart"))
	if !strings.Contains(r.stderr, "proxy at http://"+after+", no longer at http://"+before) {
		t.Errorf("restart onto a new listen: %v", r)
	}
	mustOK(t, chat(t, "http://"+after, u.token(), nil))
	if c, err := net.DialTimeout("tcp", before, time.Second); err == nil {
		c.Close()
		t.Errorf("the old port %s still takes connections", before)
	}
	if st, _ := u.status(); st["proxy_url"] != "http://"+after {
		t.Errorf("status after the move: %v", st)
	}
}
