// SPDX-License-Identifier: MIT

package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// gatedCmd is a secret_cmd that touches started, waits until gate
// exists, then prints the secret in file secret.
func gatedCmd(started, gate, secret string) string {
	return fmt.Sprintf(`["sh", "-c", "touch %s; while [ ! -e %s ]; do sleep 0.02; done; cat %s"]`, started, gate, secret)
}

func writeKeyfile(t *testing.T, d *Daemon, keys string) {
	t.Helper()
	if err := state.WriteAtomic(d.opts.Paths.Keyfile, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
	}
}

func keyState(t *testing.T, d *Daemon, name string) control.KeyStatus {
	t.Helper()
	for _, k := range d.status().Providers["openai"].Keys {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no key %s in status", name)
	return control.KeyStatus{}
}

const keyA = "[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"" + testSecret + "\"\n"

// A load waiting on a slow secret_cmd, overtaken by the load of a newer
// keyfile without that key, never serves its older keyfile: the removed
// key does not come back once its command ends.
func TestOlderLoadNeverServesOverANewerOne(t *testing.T) {
	d := testDaemon(t, "")
	dir := t.TempDir()
	started, gate, secret := filepath.Join(dir, "started"), filepath.Join(dir, "go"), filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("sk-slow-secret\n"), 0o600)
	writeKeyfile(t, d, keyA+"\n[[key]]\nprovider = \"openai\"\nname = \"slow\"\nsecret_cmd = "+gatedCmd(started, gate, secret)+"\n")
	older := make(chan struct{})
	go func() { d.reload("the older edit"); close(older) }()
	waitForFile(t, started)

	writeKeyfile(t, d, keyA+"\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \""+testSecret+"b\"\n")
	d.reload("the newer edit")
	if names := keyNames(d); !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("after the newer edit the daemon serves %v", names)
	}
	touch(t, gate)
	<-older
	if names := keyNames(d); !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("once the older load's command ended the daemon serves %v", names)
	}
}

// Secrets are read side by side (these two commands each wait for the
// other to start), and a load serves without those it has not read
// within secretWait: their keys say they are reading their secret, and
// serve once it is read. A reload that reads one again from the same
// place serves the old secret meanwhile.
func TestSlowSecretsServeOnceRead(t *testing.T) {
	defer func(w time.Duration) { secretWait = w }(secretWait)
	secretWait = 50 * time.Millisecond
	d := testDaemon(t, "")
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	os.WriteFile(p("s1"), []byte("sk-first-1\n"), 0o600)
	os.WriteFile(p("s2"), []byte("sk-second-1\n"), 0o600)
	writeKeyfile(t, d, keyA+
		"\n[[key]]\nprovider = \"openai\"\nname = \"one\"\nsecret_cmd = "+gatedCmd(p("started1"), p("started2"), p("s1"))+"\n"+
		"\n[[key]]\nprovider = \"openai\"\nname = \"two\"\nsecret_cmd = "+gatedCmd(p("started2"), p("go"), p("s2"))+"\n")
	d.reload("edit")
	if k := keyState(t, d, "two"); k.State != "unavailable" || k.Reason != readingSecret || k.Action != "" {
		t.Fatalf("a key whose secret is being read: %+v", k)
	}
	if k := keyState(t, d, "a"); k.State != "ready" {
		t.Fatalf("a key with its secret in the keyfile, while another's is read: %+v", k)
	}
	touch(t, p("go"))
	served := func(name, secret string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			up := d.snap.Load().Providers["openai"]
			if k := up.Keys[name]; k.Secret == secret && k.Unavailable == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never served its secret: %+v", name, keyState(t, d, name))
			}
		}
	}
	served("one", "sk-first-1")
	served("two", "sk-second-1")

	os.Remove(p("go"))
	os.WriteFile(p("s2"), []byte("sk-second-2\n"), 0o600)
	d.reload("read again")
	served("two", "sk-second-1")
	touch(t, p("go"))
	served("two", "sk-second-2")
}
