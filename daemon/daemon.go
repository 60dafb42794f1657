package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/proxy"
	"github.com/llmkey/llmkey/daemon/secrets"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// Options configure a daemon.
type Options struct {
	Paths   state.Paths
	Version string
	Log     *slog.Logger
	// LogTo is where Log writes, for status.
	LogTo control.LogStatus
	// Spawned: started by the CLI, which waits for Ready.
	Spawned bool
	// WaitForLock: another daemon runs; wait for it to exit, then serve
	// (a service's daemon, which must not fight one the CLI started).
	WaitForLock bool
	// Ready is called once: with nil when both listeners are bound and the
	// daemon serves, or with the reason it could not start.
	Ready func(*control.StartError)
}

// Daemon is one running llmkey daemon: it composes the request path
// (proxy), the keys' live state (rotate), the control API, the keyfile
// watcher and the keeper of the state on disk.
type Daemon struct {
	opts      Options
	log       *slog.Logger
	proxyURL  string
	startedAt time.Time
	// clock is the one clock of the daemon and everything it composes.
	clock rotate.Clock

	proxy    *proxy.Handler
	snap     atomic.Pointer[proxy.Snapshot]
	stopOnce sync.Once
	stop     chan struct{} // closed when a stop is requested

	mu         sync.Mutex // guards keyfileErr, loadedAt, pools and publishing a snapshot
	keyfileErr error
	loadedAt   time.Time
	servedGood bool // a keyfile was loaded and served once: a bad edit leaves it serving
	// secretTimer reloads while a secret could not be read.
	secretTimer *time.Timer
	// pools hold each provider's live key state. They outlive
	// snapshots: a key keeps its cooldowns across reloads.
	pools map[string]*rotate.Pool

	usage          *ledger
	persist        persistence
	runtime        runtimeFiles // owned by Run, then by the keeper
	metrics        *metrics
	overridesDirty atomic.Bool // a write of disabled.json failed
	tokens         *tokenStore // the scoped tokens
}

// proxyIdleTimeout closes a proxy connection with no request in flight.
const proxyIdleTimeout = 2 * time.Minute

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// publish makes cfg the configuration that new requests see, and tells
// each provider's pool about its keys. The caller holds d.mu. A keyfile
// that validation let through must never take the daemon down: should
// building its configuration fail all the same, the last one keeps
// serving and the error says so.
func (d *Daemon) publish(cfg *state.Config, unavailable map[string]string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &state.KeyfileError{Path: cfg.Path, Msg: fmt.Sprintf("could not be loaded (llmkey failed on it: %v)", p),
				Hint: "please report this with the keyfile's shape (not its secrets); undo the last edit meanwhile"}
		}
	}()
	s := proxy.Build(cfg, unavailable, func(name string) *rotate.Pool {
		p := d.pools[name]
		if p == nil {
			p = rotate.NewPool(name, d.clock)
			d.pools[name] = p
		}
		return p
	}, func(name string) proxy.Observer { return d.metrics.latency.With(name) })
	for name, p := range d.pools {
		if _, ok := s.Providers[name]; !ok {
			p.Update(rotate.Policy{}, nil) // its keys are gone
		}
	}
	d.snap.Store(s)
	return nil
}

// secretRetry is how soon a secret that could not be read (a locked
// keychain, a failing secret_cmd) is tried again.
const secretRetry = 30 * time.Second

// readSecrets is cfg with each key's secret read from where the keyfile
// says (the keychain, a command), and why for those that could not be:
// those keys serve nothing until a later try reads them. The secrets
// live in memory only.
func (d *Daemon) readSecrets(cfg *state.Config) (*state.Config, map[string]string) {
	var out *state.Config
	unavailable := map[string]string{}
	for i, k := range cfg.Keys {
		if k.Secret != "" {
			continue
		}
		if out == nil {
			c := *cfg
			c.Keys = slices.Clone(cfg.Keys)
			out = &c
		}
		secret, err := secrets.Read(context.Background(), k)
		if err != nil {
			unavailable[k.Ref()] = "secret not read: " + err.Error()
			d.log.Warn("a key's secret could not be read; the key serves nothing until it can", "key", k.Ref(), "err", err)
			continue
		}
		out.Keys[i].Secret = secret
	}
	if out == nil {
		return cfg, nil
	}
	if len(unavailable) > 0 {
		d.mu.Lock()
		if d.secretTimer == nil {
			d.secretTimer = time.AfterFunc(secretRetry, func() {
				d.mu.Lock()
				d.secretTimer = nil
				d.mu.Unlock()
				d.reload("reading secrets again")
			})
		}
		d.mu.Unlock()
	}
	return out, unavailable
}

// newDaemon is a daemon with nothing loaded or bound yet.
func newDaemon(opts Options, clock rotate.Clock) *Daemon {
	d := &Daemon{opts: opts, log: opts.Log, stop: make(chan struct{}), clock: clock,
		pools: map[string]*rotate.Pool{}, usage: newLedger(nil)}
	d.startedAt = clock.Now()
	d.proxy = &proxy.Handler{Snapshot: d.snap.Load, Clock: clock, Log: opts.Log, Transport: proxy.NewTransport(), Usage: d.usage}
	d.metrics = newMetrics(d)
	d.proxy.Events, d.proxy.Metrics = d.metrics, d.metrics.handler
	return d
}

// Run serves until SIGTERM, SIGINT or a stop request, then drains and
// returns nil. It returns a *StartError when it could not start.
func Run(opts Options) error {
	d := newDaemon(opts, systemClock{})
	ready := func(e *control.StartError) {
		if opts.Ready != nil {
			opts.Ready(e)
			opts.Ready = nil
		}
	}
	fail := func(e *control.StartError) error {
		if e.Hint == "" {
			e.Hint = fmt.Sprintf("llmkey needs to write in %s and %s: check that both are yours and writable (or set LLMKEY_STATE_DIR, LLMKEY_RUNTIME_DIR)",
				opts.Paths.StateDir, opts.Paths.RuntimeDir)
		}
		d.log.Error("could not start", "err", e.Message)
		ready(e)
		return e
	}

	if err := harden(); err != nil {
		d.log.Warn("could not keep other processes out of the daemon's memory", "err", err)
	}
	p := opts.Paths
	if err := state.EnsureRuntimeDir(p.RuntimeDir); err != nil {
		return fail(startError(err, false))
	}
	lock, err := acquireLock(p.LockPath())
	if errors.Is(err, errLocked) && opts.WaitForLock {
		d.log.Info("another llmkey daemon serves; this one serves once it exits", "pid", control.LockHolder(p.LockPath()))
		if lock, err = waitForLock(p.LockPath()); lock == nil && err == nil {
			d.log.Info("stopped while waiting")
			return nil
		}
	}
	if errors.Is(err, errLocked) {
		return fail(&control.StartError{Message: fmt.Sprintf("another llmkey daemon is running (pid %d)", control.LockHolder(p.LockPath())),
			Hint: "use it, or stop it first: llmkey stop", Running: true})
	}
	if err != nil {
		return fail(startError(err, false))
	}
	d.runtime.lock = lock
	defer func() { d.runtime.lock.Close() }()
	// One state dir, one writer: two daemons on it would each write its
	// usage over the other's, and each enforce the limits alone.
	if err := state.EnsurePrivateDir(p.StateDir); err != nil {
		return fail(startError(err, false))
	}
	slock, err := acquireLock(p.StateLockPath())
	if errors.Is(err, errLocked) {
		return fail(&control.StartError{Message: fmt.Sprintf("another llmkey daemon (pid %d) uses the state dir %s", control.LockHolder(p.StateLockPath()), p.StateDir),
			Hint: "one daemon writes one state dir: stop that one (it has another runtime dir), or give this one its own LLMKEY_STATE_DIR", Running: false})
	}
	if err != nil {
		return fail(startError(err, false))
	}
	d.runtime.stateLock = slock
	defer func() { d.runtime.stateLock.Close() }()
	d.loadUsage()

	cfg, err := state.Load(p.Keyfile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No keys yet is a state, not a failure: the watcher picks up the
		// first "llmkey add".
		cfg = &state.Config{Path: p.Keyfile}
		d.keyfileErr = err
	case err != nil:
		return fail(startError(err, true))
	default:
		d.servedGood = true
	}
	cfg, unavailable := d.readSecrets(cfg)
	d.mu.Lock()
	err = d.publish(cfg, unavailable)
	if err == nil {
		d.seedToday()
	}
	d.mu.Unlock()
	if err != nil {
		return fail(startError(err, true))
	}
	d.loadOverrides()
	d.loadTokens()
	d.proxy.Grants = d.tokens.lookup
	d.loadedAt = d.clock.Now()

	token, err := state.LoadOrCreateToken(p.StateDir)
	var ce *state.CorruptError
	if errors.As(err, &ce) {
		// A token nobody can use: kept aside, and a new one made. Tools
		// started with the old one were refused already. Should it not
		// move, the daemon does not start: it has no token to serve with.
		if !d.setAside("token file", ce.Path, ce.Err, "a new token is made (restart tools started before)") {
			return fail(&control.StartError{Message: err.Error(),
				Hint: fmt.Sprintf("the daemon could not move it aside: move %s out of the way, or make %s writable; a new token is then made", ce.Path, p.StateDir)})
		}
		token, err = state.LoadOrCreateToken(p.StateDir)
	}
	if err != nil {
		return fail(startError(err, false))
	}
	d.proxy.Token = token

	handed, err := socketsHandedOver(p.SocketPath())
	if err != nil {
		return fail(&control.StartError{Message: err.Error(), Hint: "fix the ListenStream lines of llmkey.socket (llmkey service install writes them)"})
	}
	proxyLn := handed.proxy
	if proxyLn == nil {
		proxyLn, err = net.Listen("tcp", cfg.Listen())
	} else if got := proxyLn.Addr().String(); got != cfg.Listen() {
		d.log.Warn("serving the port the socket unit holds, not the keyfile's [daemon] listen: to move, run llmkey service install (it rewrites the socket unit and restarts it)",
			"port", got, "listen", cfg.Listen())
	}
	if err != nil {
		return fail(&control.StartError{Message: fmt.Sprintf("cannot listen on %s: %v", cfg.Listen(), err),
			Hint: "another program uses that port: set [daemon] listen in the keyfile to another port (\"127.0.0.1:0\" picks a free one)", PortTaken: errors.Is(err, syscall.EADDRINUSE)})
	}
	d.proxyURL = "http://" + proxyLn.Addr().String()

	// We hold the lock, so a socket file here is a dead daemon's, unless
	// it was handed over.
	sock := p.SocketPath()
	var ctlLn net.Listener
	var sockInfo os.FileInfo
	if handed.control != nil && answers(sock) {
		ctlLn = handed.control
		sockInfo, err = os.Lstat(sock)
		d.runtime.handedOver = true
		d.log.Info("serving the sockets handed over", "proxy", handed.proxy != nil, "control", sock)
	} else if handed.control != nil {
		// The socket unit's control socket is no longer at its path (the
		// runtime dir was removed under a daemon that then stopped): no
		// CLI can reach it there, so this daemon makes one of its own.
		handed.control.Close()
		d.runtime.handedOver = true
		d.replacedUnitSocket()
		if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			proxyLn.Close()
			return fail(startError(fmt.Errorf("remove stale socket: %w", err), false))
		}
		ctlLn, sockInfo, err = listenSocket(sock)
	} else {
		if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			proxyLn.Close()
			return fail(startError(fmt.Errorf("remove stale socket: %w", err), false))
		}
		ctlLn, sockInfo, err = listenSocket(sock)
	}
	if err != nil {
		proxyLn.Close()
		hint := "check that " + p.RuntimeDir + " is yours and writable, or set LLMKEY_RUNTIME_DIR to another directory"
		if len(sock) > 100 {
			hint = "the socket path is too long for UNIX sockets: set LLMKEY_RUNTIME_DIR to a shorter directory"
		}
		return fail(&control.StartError{Message: fmt.Sprintf("cannot listen on %s: %v", sock, err), Hint: hint})
	}
	d.runtime.ctlLn, d.runtime.sockInfo = ctlLn, sockInfo

	// An idle connection is closed after a while, and a slow header
	// cannot hold one either; another user's are refused at accept.
	proxySrv := &http.Server{Handler: d.proxy, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: proxyIdleTimeout,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
	ctlSrv := &http.Server{Handler: d.controlHandler(), ReadHeaderTimeout: 10 * time.Second, ConnContext: withConn}
	d.runtime.serve = func(ln net.Listener) { ctlSrv.Serve(peerListener{Listener: ln, uid: os.Getuid(), log: d.log}) }
	go proxySrv.Serve(&ownTCPListener{Listener: proxyLn, uid: os.Getuid(), log: d.log})
	go d.runtime.serve(ctlLn)

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go d.watchKeyfile(watchCtx)
	keepCtx, stopKeeper := context.WithCancel(context.Background())
	kept := make(chan struct{})
	go func() { d.keep(keepCtx); close(kept) }()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	d.log.Info("ready", "proxy", d.proxyURL, "socket", sock, "pid", os.Getpid(), "version", opts.Version,
		"keys", len(cfg.Keys), "keyfile", p.Keyfile)
	ready(nil)

	for stopping := false; !stopping; {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.reload("SIGHUP")
				continue
			}
			d.log.Info("draining", "signal", s.String())
			stopping = true
		case <-d.stop:
			d.log.Info("draining", "reason", "stop requested")
			stopping = true
		}
	}
	timeout := cfg.Daemon.DrainTimeout.Or(state.DefaultDrainTimeout)
	if cut := d.proxy.Drain(timeout); cut > 0 {
		d.log.Warn("drain timeout: cut the requests still in flight, counted as partial", "cut", cut, "timeout", timeout)
	}
	stopKeeper()
	<-kept
	d.keepState(true) // the last counts, before the exit
	if _, problem := d.stateStatus(); problem != "" {
		d.log.Error("exiting with state not written: the counts since then are lost", "problem", problem)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	proxySrv.Shutdown(ctx)
	ctlSrv.Shutdown(ctx)
	if !d.runtime.lost && !d.runtime.handedOver {
		os.Remove(sock) // a socket handed over is systemd's, to wake the next daemon
	}
	d.log.Info("stopped")
	return nil
}

// answers reports whether a listener takes connections at the socket
// path: the one handed over does (the kernel queues the connection until
// it is served); a removed or dead one does not. A queue too full to
// take one more still has a listener.
func answers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED)
	}
	c.Close()
	return true
}

// replacedUnitSocket records that the control socket the socket unit
// holds is not at its path any more, and this daemon serves its own there.
func (d *Daemon) replacedUnitSocket() {
	if !d.runtime.replaced.Swap(true) {
		d.log.Warn("the control socket that llmkey.socket holds was removed; this daemon serves one of its own at its path. " +
			"Once it stops, llmkey commands wake the next one through the port, a moment slower: systemctl --user restart llmkey.socket puts it back")
	}
}

// listenSocket binds the control socket at path, for its owner only, and
// returns what it is on disk, to notice when it is removed or replaced.
func listenSocket(path string) (net.Listener, os.FileInfo, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, nil, err
	}
	os.Chmod(path, 0o600)
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, fi, nil
}

// requestStop begins the drain; safe to call more than once.
func (d *Daemon) requestStop() { d.stopOnce.Do(func() { close(d.stop) }) }

func startError(err error, keyfile bool) *control.StartError {
	e := &control.StartError{Message: err.Error(), Keyfile: keyfile}
	var h interface{ HintText() string }
	if errors.As(err, &h) {
		e.Hint = h.HintText()
	}
	return e
}
