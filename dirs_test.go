// SPDX-License-Identifier: MIT

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests here need a second local user (newOtherUser): what they check
// is that another user who can write a directory on the way to llmkey's
// state or runtime dir gets nothing out of it.

// sh runs a shell script as the other user.
func (o *otherUser) sh(t *testing.T, script string) {
	t.Helper()
	cmd := o.command()
	cmd.Path, cmd.Args = "/bin/sh", []string{"sh", "-c", "set -e; " + script}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as the other user, %s: %v\n%s", script, err, out)
	}
}

// lair is a directory of the other user's, open to all, outside the home.
func (o *otherUser) lair(t *testing.T) string {
	t.Helper()
	pub, err := os.MkdirTemp("", "lkpub")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	os.Chmod(pub, 0o755)
	lair := filepath.Join(pub, "lair")
	os.Mkdir(lair, 0o777)
	os.Chmod(lair, 0o777)
	os.Chown(lair, o.uid, o.gid)
	return lair
}

// oursUnder lists what this user owns under dirs (the dirs themselves
// included): there, the other user could swap or read it.
func oursUnder(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err == nil && int(fi.Sys().(*syscall.Stat_t).Uid) == os.Getuid() {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// waitLog waits up to 10 s for the daemon's log to hold want.
func (u *user) waitLog(t *testing.T, want string) string {
	t.Helper()
	var log string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(u.stateDir(), "daemon.log"))
		if log = string(b); strings.Contains(log, want) {
			return log
		}
	}
	t.Fatalf("the daemon's log does not say %q:\n%s", want, log)
	return ""
}

// waitStatus runs status (with env) until its output holds want, for up
// to 10 s, and returns the last result.
func (u *user) waitStatus(t *testing.T, env []string, want string) result {
	t.Helper()
	var r result
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r = u.run(nil, env, "status"); strings.Contains(r.stdout+r.stderr, want) {
			return r
		}
	}
	t.Fatalf("status never said %q: %v", want, r)
	return r
}

// waitStatusOK runs status until it exits 0, for up to 10 s.
func (u *user) waitStatusOK(t *testing.T) {
	t.Helper()
	var r result
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r = u.llmkey("status"); r.code == 0 {
			return
		}
	}
	t.Fatalf("status never came back to 0: %v", r)
}

// Without XDG_RUNTIME_DIR the runtime dir is ~/.cache/llmkey/run. With a
// ~/.cache that another user may write, or owns, neither start nor the
// daemon itself makes its socket or lock there, whatever that user put
// in it (a directory of theirs, or run/ as a symlink to one): they refuse,
// naming the directory and how to fix it.
func TestDaemonRefusesARuntimeDirAnotherUserCouldSwap(t *testing.T) {
	o := newOtherUser(t)
	lair := o.lair(t)
	for _, tt := range []struct {
		name, says string
		plant      func(t *testing.T, cache string)
	}{
		{"their directory in a cache open to all", "may be written by other users (mode 0777)", func(t *testing.T, cache string) {
			os.Chmod(cache, 0o777)
			o.sh(t, "mkdir -m 777 "+cache+"/llmkey")
		}},
		{"run as their symlink in a cache open to all", "may be written by other users (mode 0777)", func(t *testing.T, cache string) {
			os.Chmod(cache, 0o777)
			o.sh(t, "mkdir -m 777 "+cache+"/llmkey && ln -s "+lair+" "+cache+"/llmkey/run")
		}},
		{"run as their symlink in a cache of theirs", "is owned by uid", func(t *testing.T, cache string) {
			os.Chown(cache, o.uid, o.gid)
			o.sh(t, "mkdir -m 777 "+cache+"/llmkey && ln -s "+lair+" "+cache+"/llmkey/run")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t)
			fake := newFakeProvider(t)
			u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
			os.Chmod(u.home, 0o755)
			cache := filepath.Join(u.home, ".cache")
			os.Mkdir(cache, 0o700)
			tt.plant(t, cache)
			// The CLI may refuse the symlink before it looks further; the
			// daemon names the directory at fault.
			for _, args := range [][]string{{"start"}, {"exec", "--", "true"}, {"daemon"}} {
				r := u.llmkey(args...)
				says := strings.Contains(r.stderr, tt.says) || args[0] != "daemon" && strings.Contains(r.stderr, "run is a symbolic link")
				if r.code != 1 || !strings.Contains(r.stderr, "llmkey: ") || !strings.Contains(r.stderr, cache) || !says || !strings.Contains(r.stderr, "hint:") {
					t.Errorf("llmkey %v: %v", args, r)
				}
			}
			if ours := oursUnder(lair, filepath.Join(cache, "llmkey")); len(ours) > 0 {
				t.Errorf("llmkey made files where the other user can reach them: %v", ours)
			}
		})
	}
}

// The other user swaps the runtime dir while the daemon runs, through a
// ~/.cache the user left open to all: the daemon puts nothing in the
// directory they planted (nor follows their symlink), says why in its log
// and in status, keeps serving the proxy, and serves its socket again
// once the user has put things right.
func TestDaemonNeverFollowsARuntimeDirAnotherUserSwapped(t *testing.T) {
	o := newOtherUser(t)
	lair := o.lair(t)
	u := newUser(t)
	fake := newFakeProvider(t)
	os.Chmod(u.home, 0o755)
	base, token := u.oneKey(fake.URL, u.canary("sk-"))
	pid := u.daemonPID()
	cache := filepath.Join(u.home, ".cache")
	planted, gone := filepath.Join(cache, "llmkey"), filepath.Join(cache, "gone")

	os.Chmod(cache, 0o777)
	o.sh(t, "mkdir -m 777 "+cache+"/evil && mv "+planted+" "+gone+" && mv -T "+cache+"/evil "+planted)
	u.waitLog(t, "refusing the runtime dir")
	if ours := oursUnder(lair, planted); len(ours) > 0 {
		t.Errorf("the daemon put files in the other user's directory: %v", ours)
	}
	// Through the socket it still has (where the other user moved it).
	r := u.run(nil, []string{"LLMKEY_RUNTIME_DIR=" + gone + "/run"}, "status")
	if r.code != 1 || !strings.Contains(r.stdout, "refusing the runtime dir "+u.runtimeDir()) || !strings.Contains(r.stdout, cache+" may be written by other users") {
		t.Errorf("status through the old socket: %v", r)
	}
	u.chatN(t, base, token, 2)

	// The user closes ~/.cache; the other user's llmkey/, with run/ a
	// symlink to their directory, is still there.
	o.sh(t, "ln -s "+lair+" "+planted+"/run")
	os.Chmod(cache, 0o700)
	u.waitStatus(t, []string{"LLMKEY_RUNTIME_DIR=" + gone + "/run"}, planted+" is owned by uid")
	if ours := oursUnder(lair, planted); len(ours) > 0 {
		t.Errorf("the daemon followed the other user's symlink: %v", ours)
	}

	os.RemoveAll(planted)
	os.Rename(gone, planted)
	u.waitStatusOK(t)
	if got := u.daemonPID(); got != pid {
		t.Errorf("after the fix the daemon is pid %d, want the same %d", got, pid)
	}
	u.chatN(t, base, token, 1)
}

// The other user moves the state dir away through a ~/.local/state the
// user left open to all: the daemon does not make it again there, nor
// write through the symlink they plant next; it counts in memory, status
// says why, and once the user has put things right it writes it all.
func TestDaemonNeverWritesAStateDirAnotherUserCouldSwap(t *testing.T) {
	o := newOtherUser(t)
	lair := o.lair(t)
	u := newUser(t)
	fake := newFakeProvider(t)
	os.Chmod(u.home, 0o755)
	base, token := u.oneKey(fake.URL, u.canary("sk-"))
	u.chatN(t, base, token, 2)
	local := filepath.Join(u.home, ".local")
	parent := filepath.Join(local, "state")
	os.Chmod(local, 0o755)

	os.Chmod(parent, 0o777)
	o.sh(t, "mv "+u.stateDir()+" "+parent+"/gone")
	r := u.waitStatus(t, nil, parent+" may be written by other users (mode 0777)")
	if r.code != 1 || !strings.Contains(r.stdout, "state not persisted") || !strings.Contains(r.stdout, "chmod go-w") {
		t.Errorf("status with the state dir refused: %v", r)
	}
	if _, err := os.Lstat(u.stateDir()); err == nil {
		t.Errorf("the daemon made its state dir again where the other user can swap it")
	}
	u.chatN(t, base, token, 3)

	o.sh(t, "ln -s "+lair+" "+u.stateDir())
	os.Chmod(parent, 0o755)
	u.waitStatus(t, nil, u.stateDir()+" is a symbolic link made by uid")
	if ours := oursUnder(lair); len(ours) > 0 {
		t.Errorf("the daemon wrote through the other user's symlink: %v", ours)
	}

	os.Remove(u.stateDir())
	u.waitStatusOK(t)
	if rep := u.usage(); rep.Total.Requests != 5 {
		t.Errorf("%d requests counted, want 5", rep.Total.Requests)
	}
}
