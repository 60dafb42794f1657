package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// otherUser is a second local user, for the tests of what another user
// on the machine can and cannot do to this one's llmkey. Creating one
// needs root, which CI has; it is removed when the test ends.
type otherUser struct {
	name     string
	uid, gid int
	bin      string // a copy of this test binary that the user may run
}

func newOtherUser(t *testing.T) *otherUser {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs a second local user, which only root can create (CI runs as root)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "lkother" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := osuser.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	o := &otherUser{name: name}
	o.uid, _ = strconv.Atoi(u.Uid)
	o.gid, _ = strconv.Atoi(u.Gid)
	// The test binary lives in a directory only we may enter.
	dir, err := os.MkdirTemp("", "lkbin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	o.bin = filepath.Join(dir, "llmkey.test")
	self, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	out, err := os.OpenFile(o.bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(out, self)
	out.Close()
	return o
}

// command runs the test binary as this user, with env.
func (o *otherUser) command(env ...string) *exec.Cmd {
	cmd := exec.Command(o.bin, "-test.run=XXX")
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}}
	return cmd
}
