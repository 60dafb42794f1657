// SPDX-License-Identifier: MIT

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The .deb as a user of Debian or Ubuntu gets it, installed on this
// machine with dpkg (so: as root, which CI is): llmkey version names the
// snapshot's version and commit; man finds the page; a new bash, zsh and
// fish complete llmkey from the package's scripts with nothing of the
// user's; systemd-analyze --user verify passes the units, and systemctl
// --user enable --now llmkey.socket, for a user whose user manager runs,
// serves requests from /usr/bin/llmkey. Removed, the package leaves none
// of its files. The .rpm holds the same files, each where Fedora keeps
// it.
func TestDebPackage(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("installs a package on this machine, which needs root (CI runs as root)")
	}
	for _, tool := range [][2]string{{"dpkg", "dpkg"}, {"rpm", "rpm"}, {"man", "man-db"}, {"systemd-analyze", "systemd"}} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			t.Fatalf("%s is needed (apt-get install %s; .ci/run installs it)", tool[0], tool[1])
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "llmkey").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Skip("a llmkey package is installed on this machine already: this test installs and removes its own (dpkg --purge llmkey)")
	}
	r := releaseSnapshot(t)
	debs, rpms := packages(r, "deb"), packages(r, "rpm")
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("packages for linux/%s: %v %v", runtime.GOARCH, debs, rpms)
	}
	files := debFiles(t, debs[0])
	var existed []string
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			existed = append(existed, f)
		}
	}
	t.Cleanup(func() { exec.Command("dpkg", "--purge", "llmkey").Run() })
	if out, err := exec.Command("dpkg", "-i", debs[0]).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i %s: %v\n%s", debs[0], err, out)
	}

	out, err := exec.Command("/usr/bin/llmkey", "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "llmkey "+r.Version+" (commit "+r.Commit[:12]+", ") {
		t.Errorf("llmkey version: %v %q, want %s and commit %s", err, out, r.Version, r.Commit)
	}
	u := newUser(t)
	u.env = slices.DeleteFunc(u.env, func(e string) bool { return strings.HasPrefix(e, "PATH=") })
	u.env = append(u.env, "PATH=/usr/local/bin:/usr/bin:/bin")
	man := exec.Command("man", "-w", "llmkey")
	man.Env = u.env
	if out, err := man.Output(); err != nil || strings.TrimSpace(string(out)) != "/usr/share/man/man1/llmkey.1.gz" {
		t.Errorf("man -w llmkey: %v %q", err, out)
	}
	packagedCompletions(t, u)
	verifyUnits(t, u)
	t.Run("user manager", packagedSocketServes)

	if out, err := exec.Command("dpkg", "-r", "llmkey").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -r llmkey: %v\n%s", err, out)
	}
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil && !slices.Contains(existed, f) {
			t.Errorf("dpkg -r llmkey left %s", f)
		}
	}
	if out, err := exec.Command("dpkg", "--purge", "llmkey").CombinedOutput(); err != nil {
		t.Errorf("dpkg --purge llmkey: %v\n%s", err, out)
	}

	checkRPMFiles(t, rpms[0], files)
}

// checkRPMFiles: the .rpm holds the .deb's files, but where Fedora's zsh
// looks and where it keeps licences.
func checkRPMFiles(t *testing.T, rpm string, files []string) {
	var want []string
	for _, f := range files {
		if !strings.HasSuffix(f, "/") {
			f = strings.Replace(f, "/usr/share/zsh/vendor-completions/", "/usr/share/zsh/site-functions/", 1)
			want = append(want, strings.Replace(f, "/usr/share/doc/llmkey/copyright", "/usr/share/licenses/llmkey/LICENSE", 1))
		}
	}
	out, err := exec.Command("rpm", "-qlp", rpm).Output()
	got := strings.Fields(string(out))
	slices.Sort(want)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("rpm -qlp %s: %v\n%s\nwant the .deb's files:\n%s", rpm, err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// packages are the paths of the release's Linux packages of format for
// this machine's architecture.
func packages(r *release, format string) []string {
	var out []string
	for _, p := range r.of("Linux Package", "linux", runtime.GOARCH) {
		if p.Extra["Format"] == format {
			out = append(out, p.Path)
		}
	}
	return out
}

// debFiles are the paths in a .deb, directories with a final "/".
func debFiles(t *testing.T, deb string) []string {
	out, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", deb, err)
	}
	tf := filepath.Join(t.TempDir(), "data.tar")
	writeFile(t, tf, string(out), 0o600)
	list, err := exec.Command("tar", "-tf", tf).Output()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, l := range strings.Fields(string(list)) {
		if f := strings.TrimPrefix(l, "."); f != "/" {
			files = append(files, f)
		}
	}
	for _, f := range []string{"/usr/bin/llmkey", "/usr/share/man/man1/llmkey.1.gz", "/usr/share/bash-completion/completions/llmkey",
		"/usr/share/zsh/vendor-completions/_llmkey", "/usr/share/fish/vendor_completions.d/llmkey.fish",
		"/usr/lib/systemd/user/llmkey.service", "/usr/lib/systemd/user/llmkey.socket", "/usr/share/doc/llmkey/copyright"} {
		if !slices.Contains(files, f) {
			t.Errorf("%s has no %s:\n%s", deb, f, strings.Join(files, "\n"))
		}
	}
	return files
}

// packagedCompletions: new shells, with only what the package installed,
// complete llmkey li<Tab> to list: bash through bash-completion (as
// Debian's ~/.bashrc loads it), zsh from its default fpath, fish from its
// vendor directory.
func packagedCompletions(t *testing.T, u *user) {
	bashCompletion := bashCompletionScript(t)
	tm := newTmux(t, u)
	for _, sh := range []struct{ name, start, load string }{
		{"bash", "bash --norc --noprofile", "source " + bashCompletion},
		{"zsh", "zsh -f", "autoload -U compinit && compinit -u"},
		{"fish", "fish", "set -g fish_greeting"},
	} {
		func() {
			s := startShell(t, tm, sh.name, sh.start)
			defer s.close()
			s.run(sh.load + "; command -v llmkey")
			if sc := s.screen(); !strings.Contains(sc, "\n/usr/bin/llmkey\n") {
				t.Fatalf("%s: llmkey is not the package's /usr/bin/llmkey:\n%s", sh.name, sc)
			}
			s.complete("llmkey li", "llmkey list ")
		}()
	}
}

// verifyUnits has systemd check the installed units, as the user manager
// of a user with the default paths would load them: no error, and no
// warning either (an unknown key is only a warning to it).
func verifyUnits(t *testing.T, u *user) {
	rt := filepath.Join(u.home, "rt")
	if err := os.Mkdir(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "--user", "verify", "/usr/lib/systemd/user/llmkey.service", "/usr/lib/systemd/user/llmkey.socket")
	cmd.Env = append(append([]string{}, u.env...), "XDG_RUNTIME_DIR="+rt)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze --user verify: %v\n%s", err, out)
	}
}

// packagedSocketServes: for a user whose user manager runs, systemctl
// --user enable --now llmkey.socket is all it takes; the first request
// through the port starts /usr/bin/llmkey daemon --wait, which serves it
// from the keyfile at its default path. The port is moved by a drop-in,
// as docs/install.md says to. service status names the package's units.
func packagedSocketServes(t *testing.T) {
	fake := newFakeProvider(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	token := "llmk-local-" + strings.Repeat("ef", 24)
	u, systemctl := userManager(t, func(u *user) {
		u.writeKeyfile(fake.URL, map[string]string{"openai": u.canary("sk-")})
		writeFile(t, u.keyfile(), strings.Replace(readFile(t, u.keyfile()), "127.0.0.1:0", addr, 1), 0o600)
		writeFile(t, filepath.Join(u.home, ".config", "systemd", "user", "llmkey.socket.d", "listen.conf"),
			"[Socket]\nListenStream=\nListenStream="+addr+"\nListenStream=%t/llmkey/sock\n", 0o644)
		if err := os.MkdirAll(u.stateDir(), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(u.stateDir(), "token"), token+"\n", 0o600)
	})
	helper := filepath.Join(filepath.Dir(u.bin), "llmkey.test")
	u.bin = "/usr/bin/llmkey"
	if out, err := systemctl("enable", "--now", "llmkey.socket"); err != nil {
		t.Fatalf("systemctl --user enable --now llmkey.socket: %v\n%s", err, out)
	}
	defer systemctl("disable", "--now", "llmkey.socket", "llmkey.service")
	o := exec.Command(helper, "-test.run=XXX")
	o.Env = []string{"LLMKEY_CHAT_ONCE=http://" + addr + " " + token}
	o.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	if out, _ := o.CombinedOutput(); !strings.HasPrefix(string(out), "200 ") || !strings.Contains(string(out), "hello") {
		t.Fatalf("the first request through the port: %s", out)
	}
	st, code := u.status()
	pidOut, _ := systemctl("show", "--property", "MainPID", "--value", "llmkey.service")
	pid, _ := strconv.Atoi(pidOut)
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if code != 0 || st["socket_activated"] != true || st["pid"] != float64(pid) || exe != "/usr/bin/llmkey" {
		t.Errorf("status exit %d, pid %v, socket activated %v; systemd's llmkey.service is pid %d, %s", code, st["pid"], st["socket_activated"], pid, exe)
	}
	out := mustSucceed(t, u.llmkey("service", "status")).stdout
	for _, want := range []string{"/usr/lib/systemd/user/llmkey.socket: installed by the llmkey package for every user\n",
		"llmkey.socket: enabled", "now: llmkey.socket active, llmkey.service active"} {
		if !strings.Contains(out, want) {
			t.Errorf("service status does not say %q:\n%s", want, out)
		}
	}
	if r := u.llmkey("service", "uninstall"); !strings.Contains(r.stderr, "systemctl --user disable --now llmkey.socket") {
		t.Errorf("service uninstall with only the package's units: %v", r)
	}
	if out, _ := systemctl("is-active", "llmkey.socket"); out != "active" {
		t.Errorf("service uninstall stopped the package's socket: %s", out)
	}
}
