// SPDX-License-Identifier: MIT

package secrets

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	dbus "github.com/godbus/dbus/v5"

	"github.com/llmkey/llmkey/state"
)

const keyringPassword = "throwaway-password"

// secretService starts a D-Bus session bus with gnome-keyring's Secret
// Service on it, its login keyring unlocked, in a temporary home, and
// points this process at it. gnome-keyring exits with the bus, which the
// test's end kills.
func secretService(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"dbus-daemon", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed", bin)
			}
			t.Skipf("%s is not installed (apt-get install dbus gnome-keyring)", bin)
		}
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_RUNTIME_DIR=" + home}
	bus := exec.Command("dbus-daemon", "--config-file="+busConfig(t, home), "--nofork", "--print-address=1")
	bus.Env = env
	out, _ := bus.StdoutPipe()
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Process.Kill(); bus.Wait() })
	addr, _ := bufio.NewReader(out).ReadString('\n')
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", strings.TrimSpace(addr))
	kr := exec.Command("gnome-keyring-daemon", "--components=secrets", "--unlock", "--daemonize")
	kr.Env = append(env, "DBUS_SESSION_BUS_ADDRESS="+strings.TrimSpace(addr))
	kr.Stdin = strings.NewReader(keyringPassword)
	if o, err := kr.CombinedOutput(); err != nil {
		t.Fatalf("gnome-keyring-daemon: %v\n%s", err, o)
	}
	waitForName(t, ssDest)
}

// waitForName waits until a process owns name on the session bus and
// answers a search: the daemonized gnome-keyring takes the name a moment
// after its start returns, and exports the Secret Service's methods a
// moment after that ("Method SearchItems is not implemented" before).
func waitForName(t *testing.T, name string) {
	t.Helper()
	conn, err := sessionBus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var unlocked, locked []dbus.ObjectPath
		err := conn.Object(name, ssPath).Call(ssService+".SearchItems", 0, map[string]string{"service": Service}).Store(&unlocked, &locked)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared on the session bus", name)
		}
	}
}

// busConfig is a session bus's configuration that starts no service
// on demand: the Secret Service is the gnome-keyring the test started,
// never a second one the bus would start from the system's service
// files when a call comes before the first has taken its name, or after
// it went away; a prompt finds no prompter and is dismissed at once.
func busConfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "session.conf")
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=` + dir + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// login calls method on the Secret Service with args, for the login
// collection.
func login(t *testing.T, method string, args ...any) {
	t.Helper()
	conn, err := sessionBus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	svc := conn.Object(ssDest, ssPath)
	coll := dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	switch method {
	case "Lock":
		err = svc.Call(ssService+".Lock", 0, []dbus.ObjectPath{coll}).Err
	case "UnlockWithMasterPassword": // what a login does, with no prompt
		var out dbus.Variant
		var session dbus.ObjectPath
		if err = svc.Call(ssService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err == nil {
			secret := struct {
				Session     dbus.ObjectPath
				Parameters  []byte
				Value       []byte
				ContentType string
			}{session, []byte{}, []byte(keyringPassword), "text/plain"}
			err = svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, coll, secret).Err
		}
	}
	if err != nil {
		t.Fatalf("%s the login keyring: %v", method, err)
	}
}

// Reads of a locked keychain leave nothing behind, however many: no
// goroutine, no signal channel, and one unlock prompt, not one a read
// (gnome-keyring without a display dismisses it at once). Once the
// keychain is unlocked some other way, the next read has the secret.
func TestLockedKeychainCostsNothingThatLasts(t *testing.T) {
	secretService(t)
	k := state.Key{Provider: "openai", Name: "kc", Keychain: true}
	if err := Store(k, "sk-kc-secret"); err != nil {
		t.Fatal(err)
	}
	if s, err := Read(context.Background(), k); err != nil || s != "sk-kc-secret" {
		t.Fatalf("read of the unlocked keychain: %q, %v", s, err)
	}

	saved := unlocking
	defer func() { unlocking = saved }()
	start := time.Now()
	unlocking = &unlocker{now: func() time.Time { return start }} // the backoff never ends
	login(t, "Lock")
	before := runtime.NumGoroutine()
	for i := range 200 {
		_, err := Read(context.Background(), k)
		var locked *LockedError
		if !errors.As(err, &locked) {
			t.Fatalf("read %d of the locked keychain: %v", i, err)
		}
	}
	if unlocking.prompts != 1 {
		t.Errorf("200 reads showed %d unlock prompts", unlocking.prompts)
	}
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); n > before+10 && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(50 * time.Millisecond)
	}
	if n > before+10 {
		buf := make([]byte, 1<<20)
		t.Fatalf("200 reads of a locked keychain left %d goroutines (%d before):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}

	login(t, "UnlockWithMasterPassword")
	if s, err := Read(context.Background(), k); err != nil || s != "sk-kc-secret" {
		t.Fatalf("read once unlocked: %q, %v", s, err)
	}
}
