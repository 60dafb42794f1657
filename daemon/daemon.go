// SPDX-License-Identifier: MIT

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
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/proxy"
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
	// Waiting is called when the daemon starts to wait for another's
	// lock (WaitForLock): the CLI that hands that one's port on stops it
	// only then.
	Waiting func()
	// ListenFD is the proxy's listening socket, handed on by the daemon
	// this one takes over from (0: none): served when it is on the
	// keyfile's [daemon] listen, so that the port is never let go.
	ListenFD int
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
	proxyLn  net.Listener // the proxy's port, to hand on to the next daemon
	snap     atomic.Pointer[proxy.Snapshot]
	stopOnce sync.Once
	stop     chan struct{} // closed when a stop is requested
	// handingOver: the stop requested is a restart's, whose next daemon
	// holds the proxy's port already.
	handingOver atomic.Bool

	mu         sync.Mutex // guards keyfileErr, loadedAt, pools and publishing a snapshot
	keyfileErr error
	loadedAt   time.Time
	servedGood bool // a keyfile was loaded and served once: a bad edit leaves it serving
	// loads orders the keyfile's loads.
	loads loads
	// pools hold each provider's live key state. They outlive
	// snapshots: a key keeps its cooldowns across reloads.
	pools map[string]*rotate.Pool
	// renames are the keys being renamed, each carried over by the load
	// that serves its new name (see applyRenames).
	renames []pendingRename
	// unread are the keys whose secret could not be read, with why, as
	// the log last said it.
	unread map[string]string

	usage          *ledger
	persist        persistence
	runtime        runtimeFiles // owned by Run, then by the keeper
	metrics        *metrics
	overridesDirty atomic.Bool // a write of disabled.json failed
	tokens         *tokenStore // the scoped tokens
	told           toldProblems
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
	d.applyRenames(cfg)
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

// newDaemon is a daemon with nothing loaded or bound yet.
func newDaemon(opts Options, clock rotate.Clock) *Daemon {
	d := &Daemon{opts: opts, log: opts.Log, stop: make(chan struct{}), clock: clock,
		pools: map[string]*rotate.Pool{}, usage: newLedger(opts.Log, nil), unread: map[string]string{}}
	d.startedAt = clock.Now()
	d.proxy = &proxy.Handler{Snapshot: d.snap.Load, Clock: clock, Log: opts.Log, Transport: proxy.NewTransport(), Usage: d.usage}
	d.metrics = newMetrics(d)
	d.proxy.Events, d.proxy.Metrics = d.metrics, d.metrics.handler
	return d
}

// Run serves until SIGTERM, SIGINT or a stop request, then drains and
// returns nil. It returns a *StartError when it could not start. It
// composes the steps a daemon's life is made of: lock, load, bind,
// serve, drain.
func Run(opts Options) error {
	d := newDaemon(opts, systemClock{})
	inherited, err := inheritedListener(opts.ListenFD)
	if err != nil {
		return d.fail(&control.StartError{Message: err.Error(), Hint: "run llmkey restart again; llmkey stop, then llmkey start, if it fails again"})
	}
	if err := harden(); err != nil {
		d.log.Warn("could not keep other processes out of the daemon's memory", "err", err)
	}
	locked, err := d.lock()
	if locked {
		defer d.unlock()
		var cfg *state.Config
		if cfg, err = d.load(); err == nil {
			err = d.run(cfg, inherited)
		}
	}
	if inherited != nil && d.proxyLn == nil {
		inherited.Close() // never bound: stopped while waiting, or could not start
	}
	return err
}

// run binds, serves, and drains once stopped.
func (d *Daemon) run(cfg *state.Config, inherited net.Listener) error {
	opts := d.opts
	proxyLn, err := d.bind(cfg, inherited)
	if err != nil {
		return err
	}
	s := d.serve(proxyLn)
	d.log.Info("ready", "proxy", d.proxyURL, "socket", opts.Paths.SocketPath(), "pid", os.Getpid(), "version", opts.Version,
		"keys", len(cfg.Keys), "keyfile", opts.Paths.Keyfile)
	d.ready(nil)
	d.waitForStop(s.sigs)
	d.drain(cfg, s)
	return nil
}

// ready tells the CLI that spawned the daemon, once, that it serves
// (nil) or why it could not start.
func (d *Daemon) ready(e *control.StartError) {
	if d.opts.Ready != nil {
		d.opts.Ready(e)
		d.opts.Ready = nil
	}
}

// fail logs why the daemon could not start, tells the CLI, and returns
// it as Run's error.
func (d *Daemon) fail(e *control.StartError) error {
	if e.Hint == "" {
		e.Hint = fmt.Sprintf("llmkey needs to write in %s and %s: check that both are yours and writable (or set LLMKEY_STATE_DIR, LLMKEY_RUNTIME_DIR)",
			d.opts.Paths.StateDir, d.opts.Paths.RuntimeDir)
	}
	d.log.Error("could not start", "err", e.Message)
	d.ready(e)
	return e
}

// load reads what the daemon serves: the usage so far, the keyfile and
// its secrets, the keys set by hand, the scoped tokens and the local
// token.
func (d *Daemon) load() (*state.Config, error) {
	d.loadUsage()
	p := d.opts.Paths
	cfg, err := state.Load(p.Keyfile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No keys yet is a state, not a failure: the watcher picks up the
		// first "llmkey add".
		cfg = &state.Config{Path: p.Keyfile}
		d.keyfileErr = err
	case err != nil:
		return nil, d.fail(startError(err, true))
	default:
		d.servedGood = true
	}
	if err := d.loadFirst(cfg); err != nil {
		return nil, d.fail(startError(err, true))
	}
	d.loadOverrides()
	d.loadTokens()
	d.proxy.Grants = d.tokens.lookup
	d.loadedAt = d.clock.Now()
	return cfg, d.loadLocalToken()
}

// loadLocalToken reads the token every proxy request must carry, or
// makes one.
func (d *Daemon) loadLocalToken() error {
	p := d.opts.Paths
	token, err := state.LoadOrCreateToken(p.StateDir)
	var ce *state.CorruptError
	if errors.As(err, &ce) {
		// A token nobody can use: kept aside, and a new one made. Tools
		// started with the old one were refused already. Should it not
		// move, the daemon does not start: it has no token to serve with.
		if !d.setAside("token file", ce.Path, ce.Err, "a new token is made (restart tools started before)") {
			return d.fail(&control.StartError{Message: err.Error(),
				Hint: fmt.Sprintf("the daemon could not move it aside: move %s out of the way, or make %s writable; a new token is then made", ce.Path, p.StateDir)})
		}
		token, err = state.LoadOrCreateToken(p.StateDir)
	}
	if err != nil {
		return d.fail(startError(err, false))
	}
	d.proxy.Token = token
	return nil
}

// bind takes the proxy's port and the control socket: those a service
// manager handed over, else its own.
func (d *Daemon) bind(cfg *state.Config, inherited net.Listener) (net.Listener, error) {
	handed, err := socketsHandedOver(d.opts.Paths.SocketPath())
	if err != nil {
		return nil, d.fail(&control.StartError{Message: err.Error(), Hint: "fix the ListenStream lines of llmkey.socket (llmkey service install writes them)"})
	}
	proxyLn, serr := d.bindProxy(cfg, handed.proxy, inherited)
	if serr != nil {
		return nil, d.fail(serr)
	}
	d.proxyLn, d.proxyURL = proxyLn, "http://"+proxyLn.Addr().String()
	ctlLn, sockInfo, serr := d.bindControl(handed)
	if serr != nil {
		proxyLn.Close()
		return nil, d.fail(serr)
	}
	d.runtime.ctlLn, d.runtime.sockInfo = ctlLn, sockInfo
	return proxyLn, nil
}

// bindProxy is the proxy's listener: the one the socket unit handed
// over; the one the daemon before this one handed on, while the keyfile
// still names its port; or its own on the keyfile's [daemon] listen.
func (d *Daemon) bindProxy(cfg *state.Config, unit, inherited net.Listener) (net.Listener, *control.StartError) {
	switch {
	case unit != nil:
		if inherited != nil {
			inherited.Close()
		}
		if got := unit.Addr().String(); got != cfg.Listen() {
			d.log.Warn("serving the port the socket unit holds, not the keyfile's [daemon] listen: to move, run llmkey service install (it rewrites the socket unit and restarts it)",
				"port", got, "listen", cfg.Listen())
		}
		return unit, nil
	case inherited != nil && sameListen(inherited.Addr(), cfg.Listen()):
		d.log.Info("serving the port the daemon before this one handed on", "port", inherited.Addr().String())
		return inherited, nil
	case inherited != nil:
		d.log.Info("[daemon] listen changed: the port the daemon before this one held is let go", "port", inherited.Addr().String(), "listen", cfg.Listen())
		inherited.Close()
	}
	ln, err := net.Listen("tcp", cfg.Listen())
	if err != nil {
		return nil, portError(cfg.Listen(), err)
	}
	return ln, nil
}

// portError is why the proxy could not listen on listen. A port another
// user holds is named loudly: tools already pointed at it would send
// that user their prompts and their token.
func portError(listen string, err error) *control.StartError {
	e := &control.StartError{Message: fmt.Sprintf("cannot listen on %s: %v", listen, err),
		Hint: "another program uses that port: set [daemon] listen in the keyfile to another port (\"127.0.0.1:0\" picks a free one)", PortTaken: errors.Is(err, syscall.EADDRINUSE)}
	if who := OtherUserOnPort(listen); e.PortTaken && who != "" {
		e.Message = fmt.Sprintf("cannot listen on %s: another user, %s, holds that port", listen, who)
		e.Hint = "tools pointed at it would send that user their prompts and token: stop them, and find out why " + who + " holds it; " +
			"meanwhile set [daemon] listen in the keyfile to another port. On a shared machine run the daemon from its socket (llmkey service install), which never lets the port go"
		e.OtherUser = true
	}
	return e
}

// OtherUserOnPort names the other user whose socket holds the port of
// listen, as "NAME (uid N)", or is "" when none does: the port is free,
// ours, or the system does not say (macOS).
func OtherUserOnPort(listen string) string {
	uid, err := portHolderUID(listen)
	if err != nil || uid == os.Getuid() {
		return ""
	}
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

// bindControl is the control socket's listener: the one handed over
// while it is still at its path, else its own there. We hold the lock,
// so a socket file there that was not handed over is a dead daemon's.
func (d *Daemon) bindControl(handed handedOver) (net.Listener, os.FileInfo, *control.StartError) {
	sock := d.opts.Paths.SocketPath()
	if handed.control != nil {
		d.runtime.handedOver = true
		if answers(sock) {
			d.log.Info("serving the sockets handed over", "proxy", handed.proxy != nil, "control", sock)
			fi, err := os.Lstat(sock)
			if err != nil {
				return nil, nil, d.controlBindError(err)
			}
			return handed.control, fi, nil
		}
		// The socket unit's control socket is no longer at its path (the
		// runtime dir was removed under a daemon that then stopped): no
		// CLI can reach it there, so this daemon makes one of its own.
		handed.control.Close()
		d.replacedUnitSocket()
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, startError(fmt.Errorf("remove stale socket: %w", err), false)
	}
	ln, fi, err := listenSocket(sock)
	if err != nil {
		return nil, nil, d.controlBindError(err)
	}
	return ln, fi, nil
}

func (d *Daemon) controlBindError(err error) *control.StartError {
	sock := d.opts.Paths.SocketPath()
	hint := "check that " + d.opts.Paths.RuntimeDir + " is yours and writable, or set LLMKEY_RUNTIME_DIR to another directory"
	if len(sock) > 100 {
		hint = "the socket path is too long for UNIX sockets: set LLMKEY_RUNTIME_DIR to a shorter directory"
	}
	return &control.StartError{Message: fmt.Sprintf("cannot listen on %s: %v", sock, err), Hint: hint}
}

// serving is what serve started, for drain to stop.
type serving struct {
	proxy, ctl *http.Server
	proxyLn    net.Listener  // as the proxy's server accepts on it
	accepting  chan struct{} // closed when it no longer does
	open       atomic.Int64  // the proxy's connections open now
	sigs       chan os.Signal
	stopWatch  context.CancelFunc
	stopKeeper context.CancelFunc
	kept       chan struct{}
}

// serve starts serving both listeners, the keyfile watcher and the
// keeper of the state on disk, and takes the signals.
func (d *Daemon) serve(proxyLn net.Listener) *serving {
	// An idle connection is closed after a while, and a slow header
	// cannot hold one either; another user's are refused at accept.
	s := &serving{kept: make(chan struct{}), accepting: make(chan struct{}), sigs: make(chan os.Signal, 2)}
	s.proxy = &http.Server{Handler: d.proxy, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: proxyIdleTimeout,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug), ConnState: s.countConn}
	s.ctl = &http.Server{Handler: d.controlHandler(), ReadHeaderTimeout: 10 * time.Second, ConnContext: withConn}
	d.runtime.serve = func(ln net.Listener) { s.ctl.Serve(peerListener{Listener: ln, uid: os.Getuid(), log: d.log}) }
	s.proxyLn = &ownTCPListener{Listener: proxyLn, uid: os.Getuid(), log: d.log}
	go func() { s.proxy.Serve(s.proxyLn); close(s.accepting) }()
	go d.runtime.serve(d.runtime.ctlLn)

	var watchCtx, keepCtx context.Context
	watchCtx, s.stopWatch = context.WithCancel(context.Background())
	go d.watchKeyfile(watchCtx)
	keepCtx, s.stopKeeper = context.WithCancel(context.Background())
	go func() { d.keep(keepCtx); close(s.kept) }()
	signal.Notify(s.sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return s
}

// countConn keeps the count of the proxy's open connections.
func (s *serving) countConn(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.open.Add(-1)
	}
}

// waitForStop serves until SIGTERM, SIGINT or a stop request; SIGHUP
// reloads the keyfile.
func (d *Daemon) waitForStop(sigs chan os.Signal) {
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.reload("SIGHUP")
				continue
			}
			d.log.Info("draining", "signal", s.String())
			return
		case <-d.stop:
			d.log.Info("draining", "reason", "stop requested")
			return
		}
	}
}

// drain lets the requests in flight finish (up to the drain timeout),
// writes the state a last time and closes what serve started.
func (d *Daemon) drain(cfg *state.Config, s *serving) {
	defer s.stopWatch()
	defer signal.Stop(s.sigs)
	timeout := cfg.Daemon.DrainWait()
	left := timeout
	if d.handingOver.Load() {
		left = d.handOverPort(s, timeout)
	}
	if cut := d.proxy.Drain(left); cut > 0 {
		d.log.Warn("drain timeout: cut the requests still in flight, counted as partial", "cut", cut, "timeout", timeout)
	}
	s.stopKeeper()
	<-s.kept
	d.keepState(true) // the last counts, before the exit
	if _, problem := d.stateStatus(); problem != "" {
		d.log.Error("exiting with state not written: the counts since then are lost", "problem", problem)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.proxy.Shutdown(ctx)
	s.ctl.Shutdown(ctx)
	if !d.runtime.lost && !d.runtime.handedOver && d.runtime.refused.Load() == nil {
		os.Remove(d.opts.Paths.SocketPath()) // a socket handed over is systemd's, to wake the next daemon
	}
	d.log.Info("stopped")
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

// serveStop is POST /v1/stop: the drain begins, and the answer is at
// once. With ?handover=1 it is a restart's, whose next daemon holds the
// proxy's port already.
func (d *Daemon) serveStop(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("handover") == "1" {
		d.handingOver.Store(true)
	}
	d.requestStop()
	writeJSON(w, http.StatusAccepted, map[string]any{"draining": true, "pid": os.Getpid()})
}

func startError(err error, keyfile bool) *control.StartError {
	e := &control.StartError{Message: err.Error(), Keyfile: keyfile}
	var h interface{ HintText() string }
	if errors.As(err, &h) {
		e.Hint = h.HintText()
	}
	return e
}
