// SPDX-License-Identifier: MIT

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/cli/fakeprovider"
	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// DemoCommandInput is what "llmkey demo" was asked to do.
type DemoCommandInput struct {
	// Exe is the llmkey binary that runs the demo's daemon.
	Exe string
	// Interactive: on a terminal, the demo gives the user a moment to
	// open top before it begins, and keeps its daemon up at the end
	// until Enter.
	Interactive bool
	// Pause is the time between the steps, for top to show each.
	Pause time.Duration
}

func ConfigureDemoCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:  "demo",
		Usage: "show rotation, a cooldown, a parked key and a failover on a fake provider: no real key, no network",
		Description: "Makes a throw-away keyfile, state and runtime dir in a temporary directory, with keys of a made-up openai " +
			"account (one that answers, one rate limited, one invalid, two that share an organisation's limit) and an " +
			"openrouter key to fall over to. Their base_url points at a fake provider that this command serves on loopback; " +
			"a daemon of their own serves them on a free port. The demo sends requests through it and says what llmkey did " +
			"with each; it prints the command that runs 'llmkey top' on the demo's daemon in a second terminal. At the end " +
			"(or on Ctrl-C) it stops its daemon and removes everything it made. Your own keys and daemon are not touched.",
		Flags: []ucli.Flag{&ucli.DurationFlag{Name: "pause", Value: 2 * time.Second, Usage: "wait `DUR` between the steps"}},
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 0, 0); err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the llmkey binary to start the demo's daemon: %w", err)
			}
			s := streams(c)
			out, _ := s.Out.(*os.File)
			in := DemoCommandInput{Exe: exe, Pause: c.Duration("pause"), Interactive: out != nil && isTerminal(out) && isTerminal(s.In)}
			return DemoCommand(c.Context, in, s)
		},
	})
}

// The demo's keys: what the fake answers each, and its group.
var demoKeys = []struct {
	provider, name, group string
	answer                fakeprovider.Answer
	wait                  time.Duration
}{
	{"openai", "alpha", "acme", fakeprovider.Reply, 0},
	{"openai", "beta", "", fakeprovider.RateLimited, 30 * time.Second},
	{"openai", "gamma", "", fakeprovider.Invalid, 0},
	{"openai", "delta", "acme", fakeprovider.Reply, 0},
	{"openrouter", "spare", "", fakeprovider.Reply, 0},
}

// orgWait is how long the organisation-wide limit of step 3 lasts.
const orgWait = 8 * time.Second

// demoSecret is a demo key's made-up secret.
func demoSecret(provider, name string) string {
	return "sk-demo-" + provider + "-" + name + "-0000000000000000"
}

// DemoCommand runs the demo and removes all it made, also when ctx ends
// or a signal comes.
func DemoCommand(ctx context.Context, in DemoCommandInput, s Streams) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	d, err := newDemo(ctx, in, s)
	if d != nil {
		defer func() {
			if cerr := d.close(); cerr != nil && err == nil {
				err = cerr
			}
			if ctx.Err() != nil && err == nil && !d.told { // Ctrl-C after the story ends it as Enter does
				err = &Error{Err: errors.New("demo interrupted; its daemon and files are gone"), Code: ExitInterrupted}
			}
		}()
	}
	if err != nil {
		return err
	}
	if err := d.intro(ctx); err != nil {
		return nil // interrupted: the deferred close tells
	}
	for _, step := range []func(context.Context) error{d.served, d.rotation, d.orgLimit, d.recovery} {
		if err := step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	d.told = true
	d.outro(ctx)
	return nil
}

// demo is one run: its directory, its fake provider and its daemon.
type demo struct {
	in     DemoCommandInput
	out    io.Writer
	stdin  *os.File
	lines  chan struct{} // a line read from stdin; see enter
	dir    string
	paths  state.Paths
	fake   *fakeprovider.Server
	client *control.Client
	pid    int
	env    *control.Env
	seen   int               // the fake's answers told so far
	refs   map[string]string // PROVIDER/NAME by secret
	sent   int               // requests sent
	told   bool              // the story is told: what is left is the outro's wait
}

// newDemo makes the demo's directory, keyfile, fake provider and daemon;
// a demo returned with an error is to be closed.
func newDemo(ctx context.Context, in DemoCommandInput, s Streams) (*demo, error) {
	dir, err := os.MkdirTemp("", "llmkey-demo-")
	if err != nil {
		return nil, fail("set TMPDIR to a directory you may write", "make the demo's directory: %v", err)
	}
	d := &demo{in: in, out: s.Out, stdin: s.In, dir: dir, refs: map[string]string{}, paths: state.Paths{Keyfile: filepath.Join(dir, "keys.toml"),
		StateDir: filepath.Join(dir, "state"), RuntimeDir: filepath.Join(dir, "run")}}
	if d.fake, err = fakeprovider.Start(); err != nil {
		return d, err
	}
	for _, k := range demoKeys {
		d.fake.Set(demoSecret(k.provider, k.name), k.answer, k.wait)
		d.refs[demoSecret(k.provider, k.name)] = k.provider + "/" + k.name
	}
	if err := state.WriteAtomic(d.paths.Keyfile, []byte(demoKeyfile(d.fake.URL)), 0o600); err != nil {
		return d, err
	}
	st, _, err := control.EnsureRunning(ctx, d.paths, in.Exe)
	if err != nil {
		return d, fmt.Errorf("start the demo's daemon: %w", err)
	}
	d.pid, d.client = st.PID, control.NewClient(d.paths)
	if d.env, err = d.client.Env(ctx); err != nil {
		return d, fmt.Errorf("ask the demo's daemon for its proxy: %w", err)
	}
	return d, nil
}

// demoKeyfile is the demo's keyfile, its providers on the fake at url.
func demoKeyfile(url string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# llmkey demo: a throw-away keyfile. None of these keys is real: their
# providers' base_url points at a fake provider that "llmkey demo" serves
# on loopback. A built-in provider's base_url may point at any server that
# speaks its API, such as Ollama, llama.cpp or vLLM for openai.

[daemon]
listen = "127.0.0.1:0"

[provider.openai]
base_url = "%s/v1"
fallback = ["openrouter"]
fallback_models = { "gpt-4o" = "openai/gpt-4o" }

[provider.openrouter]
base_url = "%s/openrouter/v1"
`, url, url)
	for _, k := range demoKeys {
		fmt.Fprintf(&b, "\n[[key]]\nprovider = %q\nname = %q\nsecret = %q\n", k.provider, k.name, demoSecret(k.provider, k.name))
		if k.group != "" {
			fmt.Fprintf(&b, "group = %q\n", k.group)
		}
	}
	return b.String()
}

// close stops the daemon, then the fake, and removes the directory.
func (d *demo) close() error {
	var errs []error
	if d.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d.client.Stop(ctx)
		cancel()
		if control.WaitStopped(d.paths, d.pid, 10*time.Second) != nil && d.pid > 0 {
			syscall.Kill(d.pid, syscall.SIGKILL)
			control.WaitStopped(d.paths, d.pid, 5*time.Second)
		}
	}
	if d.fake != nil {
		d.fake.Close()
	}
	if err := os.RemoveAll(d.dir); err != nil {
		errs = append(errs, fail("remove it by hand", "could not remove the demo's directory: %v", err))
	}
	return errors.Join(errs...)
}

// intro says what the demo is and how to watch it, and on a terminal
// gives the user a moment to open top.
func (d *demo) intro(ctx context.Context) error {
	fmt.Fprintf(d.out, "llmkey demo: four keys of a made-up openai account and an openrouter key to fall over to,\n"+
		"on a fake provider that this command serves on %s. No real key, no network.\n\n", strings.TrimPrefix(d.fake.URL, "http://"))
	fmt.Fprintf(d.out, "  keyfile  %s\n  proxy    %s (its own daemon, pid %d)\n\n", d.paths.Keyfile, d.env.ProxyURL, d.pid)
	fmt.Fprintf(d.out, "Watch it in a second terminal:\n\n  %s llmkey top\n\nCtrl-C ends the demo at any time, and removes everything it made.\n", d.envPrefix())
	if !d.in.Interactive {
		return nil
	}
	fmt.Fprintln(d.out, "Starting in 10 s; Enter starts it now.")
	select {
	case <-d.enter():
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// envPrefix is what points an llmkey command at the demo's daemon.
func (d *demo) envPrefix() string {
	return fmt.Sprintf("LLMKEY_KEYFILE=%s LLMKEY_STATE_DIR=%s LLMKEY_RUNTIME_DIR=%s",
		shellWord(d.paths.Keyfile), shellWord(d.paths.StateDir), shellWord(d.paths.RuntimeDir))
}

// shellWord is s quoted for a POSIX shell when it needs to be.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// enter gets a value for each line read from the terminal: one reader
// for the demo's life, so that no line goes to a reader nobody waits on.
func (d *demo) enter() chan struct{} {
	if d.lines == nil {
		d.lines = make(chan struct{}, 1)
		go func() {
			for r := bufio.NewReader(d.stdin); ; {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				select {
				case d.lines <- struct{}{}:
				default:
				}
			}
		}()
	}
	return d.lines
}

// served is step 1: one request, one key.
func (d *demo) served(ctx context.Context) error {
	d.heading("1. A request: llmkey picks a key and puts it on the request")
	_, err := d.request(ctx)
	return d.pause(ctx, err)
}

// rotation is step 2: requests take the keys in turn; the rate-limited
// one cools, the invalid one is parked, and the requests go on to the
// next key, so that the client sees none of it.
func (d *demo) rotation(ctx context.Context) error {
	d.heading("2. Rotation: each request takes the next key; one that fails hands the request on")
	for i := range 8 {
		if _, err := d.request(ctx); err != nil {
			return err
		}
		if i >= 2 && d.answered("openai/beta") && d.answered("openai/gamma") {
			break
		}
	}
	fmt.Fprintln(d.out, "   Every request got its answer: the client never saw the 429 or the 401.")
	return d.pause(ctx, d.keys(ctx))
}

// orgLimit is step 3: the organisation acme's limit cools both its keys;
// with no openai key left, the request falls over to openrouter.
func (d *demo) orgLimit(ctx context.Context) error {
	d.heading("3. An organisation-wide limit, and a failover")
	for _, n := range []string{"alpha", "delta"} {
		d.fake.Set(demoSecret("openai", n), fakeprovider.OrgLimited, orgWait)
	}
	fmt.Fprintf(d.out, "   The account acme (alpha and delta) reaches its limit for %s.\n", orgWait)
	if _, err := d.request(ctx); err != nil {
		return err
	}
	return d.pause(ctx, d.keys(ctx))
}

// recovery is step 4: once acme's wait is over, openai serves again.
func (d *demo) recovery(ctx context.Context) error {
	d.heading("4. Back on openai once acme's wait is over")
	for _, n := range []string{"alpha", "delta"} {
		d.fake.Set(demoSecret("openai", n), fakeprovider.Reply, 0)
	}
	fmt.Fprintln(d.out, "   Waiting for openai/alpha to come back...")
	for deadline := time.Now().Add(orgWait + 5*time.Second); ; {
		st, err := d.client.Status(ctx)
		if err != nil {
			return err
		}
		if keyState(st, "openai", "alpha") == "ready" || time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	if _, err := d.request(ctx); err != nil {
		return err
	}
	return d.keys(ctx)
}

// outro says what is left to look at, and on a terminal keeps the
// daemon up until Enter.
func (d *demo) outro(ctx context.Context) {
	fmt.Fprintln(d.out, "\nThat was llmkey: your tools send requests to one local URL with one local token,")
	fmt.Fprintln(d.out, "and llmkey spreads them over your keys, sets aside the ones that fail, and falls over.")
	fmt.Fprintln(d.out, "Yours: llmkey add openai work, then llmkey exec -- YOUR-TOOL.")
	if !d.in.Interactive {
		return
	}
	fmt.Fprintf(d.out, "\nThe demo's daemon is still up: try %s llmkey status (or usage).\nEnter ends the demo and removes everything it made.\n", d.envPrefix())
	for len(d.enter()) > 0 { // an Enter pressed during the story
		<-d.lines
	}
	select {
	case <-d.enter():
	case <-ctx.Done():
	}
}

func (d *demo) heading(s string) { fmt.Fprintf(d.out, "\n%s\n", s) }

// pause waits between the steps, unless err ends the demo.
func (d *demo) pause(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	return sleep(ctx, d.in.Pause)
}

func sleep(ctx context.Context, dur time.Duration) error {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answered reports whether the fake has answered the key ref.
func (d *demo) answered(ref string) bool {
	return slices.ContainsFunc(d.fake.Served(0), func(s fakeprovider.Served) bool { return d.refs[s.Key] == ref })
}

// request sends one chat request through the demo's proxy and tells what
// the fake answered each key it reached, and who served it.
func (d *demo) request(ctx context.Context) (*http.Response, error) {
	d.sent++
	body := strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.env.ProxyURL+"/openai/chat/completions", body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+d.env.Token)
	req.Header.Set("Content-Type", "application/json")
	fmt.Fprintf(d.out, "   request %d\n", d.sent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("send a request through the demo's proxy: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, s := range d.fake.Served(d.seen) {
		d.seen++
		fmt.Fprintf(d.out, "     %s\n", d.tell(s))
	}
	served := resp.Header.Get("X-Llmkey-Key")
	switch {
	case resp.StatusCode != http.StatusOK:
		fmt.Fprintf(d.out, "     -> the client got %s (%s)\n", resp.Status, resp.Header.Get("X-Llmkey-Error"))
	case resp.Header.Get("X-Llmkey-Provider") != "openai":
		fmt.Fprintf(d.out, "     -> no openai key could serve: after waiting primary_wait (2s), %s served it, as model openai/gpt-4o\n", served)
	default:
		fmt.Fprintf(d.out, "     -> served by %s\n", served)
	}
	return resp, nil
}

// tell is what one answer of the fake means to llmkey.
func (d *demo) tell(s fakeprovider.Served) string {
	ref := d.refs[s.Key]
	switch s.Answer {
	case fakeprovider.RateLimited:
		return fmt.Sprintf("%s answered %d, its own rate limit (Retry-After %s): llmkey cools it that long and tries the next key", ref, s.Status, s.Wait)
	case fakeprovider.OrgLimited:
		return fmt.Sprintf("%s answered %d, a limit of its organisation: llmkey cools every key of group acme for %s", ref, s.Status, s.Wait)
	case fakeprovider.Invalid:
		return fmt.Sprintf("%s answered %d, the key is refused: llmkey parks it until its secret is replaced (llmkey set %s --secret)", ref, s.Status, ref)
	case fakeprovider.OutOfQuota:
		return fmt.Sprintf("%s answered %d, out of quota: llmkey parks it", ref, s.Status)
	}
	return fmt.Sprintf("%s answered %d", ref, s.Status)
}

// keys says each key's state, as status has it.
func (d *demo) keys(ctx context.Context) error {
	st, err := d.client.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(d.out, "   the keys now, as llmkey status and top show them:")
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, k := range demoKeys {
		ks := findKey(st, k.provider, k.name)
		if ks == nil {
			continue
		}
		left := ""
		if ks.State == "cooling" && ks.CooldownSeconds > 0 {
			left = fmt.Sprintf("%.0fs", ks.CooldownSeconds)
		}
		fmt.Fprintf(tw, "     %s/%s\t%s\t%s\t%s\n", k.provider, k.name, ks.State, left, termSafe(ks.Reason))
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(b.String(), "\n") {
		io.WriteString(d.out, strings.TrimRight(l, " \n")+strings.Repeat("\n", strings.Count(l, "\n")))
	}
	return nil
}

// findKey is provider/name's status in st, or nil.
func findKey(st *control.Status, provider, name string) *control.KeyStatus {
	for i, k := range st.Providers[provider].Keys {
		if k.Name == name {
			return &st.Providers[provider].Keys[i]
		}
	}
	return nil
}

func keyState(st *control.Status, provider, name string) string {
	if ks := findKey(st, provider, name); ks != nil {
		return ks.State
	}
	return ""
}
