package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// harnessBaseline is the commit whose request path the harness compares
// HEAD's with, build against build: the last before the round of
// features (WebSockets in one attempt loop, fallbacks, demotion) whose
// cost per request was measured.
const harnessBaseline = "30f83a5"

// BenchmarkHarnessBaseline builds harnessBaseline beside this tree and
// drives both daemons with the same load against the same fake upstream,
// in interleaved rounds: the daemon's CPU time per request served (from
// /proc, user and system), and throughput and p50 latency, each as HEAD
// over the baseline. Not part of the test run:
//
//	go test -run XXX -bench HarnessBaseline -benchtime 1x .
func BenchmarkHarnessBaseline(b *testing.B) {
	if raceEnabled {
		b.Skip("the harness measures the real binary: run it without -race")
	}
	base := buildBaseline(b)
	release := make(chan struct{})
	up := httptest.NewServer(harnessUpstream(release))
	defer up.Close()
	defer close(release)

	type daemon struct {
		name, url, token string
		pid              int
	}
	start := func(name, bin string) daemon {
		u := newUser(b)
		u.bin = bin
		secret := "sk-proj-harness" + strings.Repeat("x", 24)
		writeFile(b, u.keyfile(), fmt.Sprintf("[daemon]\nlisten = \"127.0.0.1:0\"\n\n[provider.openai]\nbase_url = %q\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = %q\n",
			up.URL+"/v1", secret), 0o600)
		env := u.proxyEnv()
		st, _ := u.status()
		pid, _ := st["pid"].(float64)
		return daemon{name, env["LLMKEY_URL"], env["LLMKEY_TOKEN"], int(pid)}
	}
	ds := []daemon{start("HEAD", llmkeyBin), start(harnessBaseline, base)}
	for _, d := range ds {
		load(d.url, d.token, harnessConns, time.Second) // warm up
	}
	var cpu, rps, p50 [2][]float64
	for i := range harnessRounds {
		for _, j := range []int{i % 2, 1 - i%2} { // each goes first in turn
			d := ds[j]
			before := cpuTime(b, d.pid)
			r := load(d.url, d.token, harnessConns, 3*time.Second)
			used := cpuTime(b, d.pid) - before
			served := r.rps * 3
			cpu[j] = append(cpu[j], used.Seconds()/served*1e6)
			rps[j] = append(rps[j], r.rps)
			p50[j] = append(p50[j], float64(r.p50))
		}
	}
	ratio := func(v [2][]float64) (float64, string) {
		var rs []float64
		var each []string
		for i := range v[0] {
			rs = append(rs, v[0][i]/v[1][i])
			each = append(each, fmt.Sprintf("%.2f", v[0][i]/v[1][i]))
		}
		slices.Sort(rs)
		return rs[len(rs)/2], strings.Join(each, " ")
	}
	fmt.Printf("\nHEAD against %s, %d-connection loads of 3 s, %d rounds taking turns (medians of the rounds' ratios)\n", harnessBaseline, harnessConns, harnessRounds)
	for j, d := range ds {
		fmt.Printf("  %-8s CPU per request %s µs, %s req/s\n", d.name, join(cpu[j], "%.1f"), join(rps[j], "%.0f"))
	}
	for _, m := range []struct {
		what   string
		v      [2][]float64
		target string
	}{
		{"daemon CPU per plain request (HEAD/baseline)", cpu, "<= 1.05 x"},
		{"throughput (HEAD/baseline)", rps, ">= 0.95 x"},
		{"p50 latency (HEAD/baseline)", p50, "<= 1.05 x"},
	} {
		r, each := ratio(m.v)
		fmt.Printf("  %-46s %.3f x (rounds: %s)  target %s\n", m.what, r, each, m.target)
	}
}

func join(v []float64, format string) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf(format, x))
	}
	return strings.Join(s, " ")
}

// buildBaseline builds harnessBaseline from this repository's history
// into a temporary directory, and returns the binary.
func buildBaseline(b *testing.B) string {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o700)
	archive := exec.Command("sh", "-c", "git archive "+harnessBaseline+" | tar -x -C "+src)
	if out, err := archive.CombinedOutput(); err != nil {
		b.Skipf("cannot take %s from git (a checkout with its history is needed): %v\n%s", harnessBaseline, err, out)
	}
	bin := filepath.Join(dir, "llmkey-"+harnessBaseline)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", harnessBaseline, err, out)
	}
	return bin
}

// cpuTime is the user and system time process pid has used.
func cpuTime(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // clock ticks, USER_HZ 100 on Linux
}
