// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// A daemon that start, restart or exec starts takes none of the
// caller's variables that would steer its upstream traffic: a tool under
// exec that sets HTTPS_PROXY and SSL_CERT_FILE and then (re)starts the
// daemon sees no request of it, a real key in each, reach its proxy.
func TestDaemonTakesNotTheCallersProxy(t *testing.T) {
	u := newUser(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var tapped atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tapped.Add(1)
			c.Close()
		}
	}()
	// An upstream that is not on loopback, which Go's transport would
	// reach through a proxy; .invalid never resolves without one.
	writeFile(t, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = \"https://upstream.llmkey.invalid/v1\"\n\n"+
		"[[key]]\nprovider = \"openai\"\nname = \"work\"\nsecret = %q\n", u.canary("sk-")), 0o600)
	ca := filepath.Join(u.home, "tool-ca.pem")
	writeFile(t, ca, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", 0o600)
	toolEnv := []string{"HTTPS_PROXY=http://" + ln.Addr().String(), "HTTP_PROXY=http://" + ln.Addr().String(), "ALL_PROXY=http://" + ln.Addr().String(), "SSL_CERT_FILE=" + ca}

	for _, args := range [][]string{{"start"}, {"restart"}, {"stop"}, {"exec", "--", "true"}} {
		mustSucceed(t, u.run(nil, toolEnv, args...))
		if args[0] == "stop" {
			continue
		}
		pid := u.daemonPID()
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		switch {
		case err == nil:
			for _, v := range toolEnv {
				name, _, _ := strings.Cut(v, "=")
				if strings.Contains("\x00"+string(environ), "\x00"+name+"=") {
					t.Errorf("llmkey %s: the daemon's environment has the caller's %s", args[0], name)
				}
			}
			if !strings.Contains(string(environ), "HOME="+u.home) {
				t.Errorf("llmkey %s: the daemon's environment has no HOME: %q", args[0], environ)
			}
		case os.Getuid() == 0:
			t.Fatalf("read the daemon's environment: %v", err)
		default:
			t.Logf("the daemon's environment is not ours to read (it is not dumpable; root may): %v", err)
		}
		env := u.proxyEnv()
		resp := chat(t, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Llmkey-Error") != "upstream-unreachable" {
			t.Errorf("llmkey %s: a request to an upstream that does not resolve: %d %s", args[0], resp.StatusCode, resp.Header.Get("X-Llmkey-Error"))
		}
		if n := tapped.Load(); n > 0 {
			t.Fatalf("llmkey %s: the caller's proxy saw %d connections from the daemon", args[0], n)
		}
	}
}
