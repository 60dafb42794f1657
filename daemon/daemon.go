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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// Options configure a daemon.
type Options struct {
	Paths   state.Paths
	Version string
	Log     *slog.Logger
	// Ready is called once: with nil when both listeners are bound and the
	// daemon serves, or with the reason it could not start.
	Ready func(*StartError)
}

// StartError is why a daemon could not start, carried to the CLI that
// spawned it.
type StartError struct {
	Message string `json:"error"`
	Hint    string `json:"hint,omitempty"`
	// Keyfile is set when the keyfile was the reason, for the exit code.
	Keyfile bool `json:"keyfile,omitempty"`
	// Running is set when another daemon already serves.
	Running bool `json:"running,omitempty"`
}

func (e *StartError) Error() string    { return e.Message }
func (e *StartError) HintText() string { return e.Hint }

// Daemon is one running llmkey daemon.
type Daemon struct {
	opts      Options
	log       *slog.Logger
	token     string
	proxyURL  string
	startedAt time.Time
	transport *http.Transport

	snap     atomic.Pointer[snapshot]
	inFlight atomic.Int64
	draining atomic.Bool
	stopOnce sync.Once
	stop     chan struct{} // closed when a stop is requested

	mu         sync.Mutex // guards keyfileErr, loadedAt and publishing a snapshot
	keyfileErr error
	loadedAt   time.Time

	usage          *ledger
	persist        persistence
	runtime        runtimeFiles // owned by Run, then by the keeper
	metrics        *metrics
	overridesDirty atomic.Bool // a write of disabled.json failed

	clock rotate.Clock
	// rot holds each provider's live key state. It outlives snapshots: a
	// key keeps its cooldowns across reloads. Guarded by mu.
	rot map[string]*rotate.Provider
}

// snapshot is one loaded keyfile, immutable once published: a reload
// builds a new one, and requests in flight keep the one they started with.
type snapshot struct {
	cfg       *state.Config
	providers map[string]*upstream
	secrets   []string // every secret, for redaction
}

// upstream is one provider with its keys.
type upstream struct {
	state.Provider
	keys    map[string]upKey // by name
	order   []string         // names in keyfile order
	rot     *rotate.Provider // nil when the provider has no keys
	latency prometheus.Observer
	// authHeader is the header the keys go upstream in, canonical.
	authHeader string
}

// upKey is a key with its fingerprint, which names it in usage, status
// and rotation without its secret.
type upKey struct {
	state.Key
	fingerprint string
	auth        []string // the value of the provider's auth header
}

// publish makes cfg the configuration that new requests see, and tells
// each provider's rotation about its keys. The caller holds d.mu.
func (d *Daemon) publish(cfg *state.Config) {
	s := &snapshot{cfg: cfg, providers: map[string]*upstream{}}
	specs := map[string][]rotate.KeySpec{}
	for _, k := range cfg.Keys {
		u := s.providers[k.Provider]
		if u == nil {
			p, _ := cfg.Provider(k.Provider)
			u = &upstream{Provider: p, keys: map[string]upKey{}, authHeader: http.CanonicalHeaderKey(p.Kind.AuthHeader())}
			s.providers[k.Provider] = u
		}
		uk := upKey{Key: k, fingerprint: state.Fingerprint(k.Secret), auth: []string{u.Kind.AuthValue(k.Secret)}}
		u.keys[k.Name] = uk
		u.order = append(u.order, k.Name)
		s.secrets = append(s.secrets, k.Secret)
		specs[k.Provider] = append(specs[k.Provider], keySpec(uk))
	}
	for name, rp := range d.rot {
		if _, ok := s.providers[name]; !ok {
			rp.Update(rotate.Policy{}, nil) // its keys are gone
		}
	}
	for name, u := range s.providers {
		rp := d.rot[name]
		if rp == nil {
			rp = rotate.NewProvider(name, d.clock)
			d.rot[name] = rp
		}
		u.latency = d.metrics.latency.WithLabelValues(name)
		rp.Update(rotate.Policy{Strategy: u.Strategy, ProbeInterval: cfg.Daemon.ProbeInterval.Or(state.DefaultProbeInterval)}, specs[name])
		u.rot = rp
	}
	d.snap.Store(s)
}

// keySpec is what rotation may know of a key: never the secret.
func keySpec(k upKey) rotate.KeySpec {
	return rotate.KeySpec{Name: k.Name, Fingerprint: k.fingerprint, Weight: k.Weight, Models: k.Models,
		RPM: k.RPM, TPM: k.TPM, MaxConcurrent: k.MaxConcurrent, RPD: k.RPD, TPD: k.TPD,
		Entry: fmt.Sprint(k.RPM, k.TPM, k.MaxConcurrent, k.RPD, k.TPD, k.Weight, k.Models)}
}

// provider resolves a route's provider: one with keys, or a known one
// without (to say "no keys" rather than "unknown").
func (s *snapshot) provider(name string) (*upstream, bool) {
	if u, ok := s.providers[name]; ok {
		return u, true
	}
	p, ok := s.cfg.Provider(name)
	if !ok {
		return nil, false
	}
	return &upstream{Provider: p}, true
}

// newDaemon is a daemon with nothing loaded or bound yet.
func newDaemon(opts Options) *Daemon {
	d := &Daemon{opts: opts, log: opts.Log, stop: make(chan struct{}), startedAt: time.Now(),
		clock: rotate.SystemClock{}, rot: map[string]*rotate.Provider{}, usage: newLedger(nil), transport: newTransport()}
	d.metrics = newMetrics(d)
	return d
}

// Run serves until SIGTERM, SIGINT or a stop request, then drains and
// returns nil. It returns a *StartError when it could not start.
func Run(opts Options) error {
	d := newDaemon(opts)
	ready := func(e *StartError) {
		if opts.Ready != nil {
			opts.Ready(e)
			opts.Ready = nil
		}
	}
	fail := func(e *StartError) error {
		if e.Hint == "" {
			e.Hint = fmt.Sprintf("llmkey needs to write in %s and %s: check that both are yours and writable (or set LLMKEY_STATE_DIR, LLMKEY_RUNTIME_DIR)",
				opts.Paths.StateDir, opts.Paths.RuntimeDir)
		}
		d.log.Error("could not start", "err", e.Message)
		ready(e)
		return e
	}

	p := opts.Paths
	if err := state.EnsurePrivateDir(p.RuntimeDir); err != nil {
		return fail(startError(err, false))
	}
	lock, err := acquireLock(p.LockPath())
	if errors.Is(err, errLocked) {
		return fail(&StartError{Message: fmt.Sprintf("another llmkey daemon is running (pid %d)", lockHolder(p.LockPath())),
			Hint: "use it, or stop it first: llmkey stop", Running: true})
	}
	if err != nil {
		return fail(startError(err, false))
	}
	d.runtime.lock = lock
	defer func() { d.runtime.lock.Close() }()
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
	}
	d.mu.Lock()
	d.publish(cfg)
	d.seedToday()
	d.mu.Unlock()
	d.loadOverrides()
	d.loadedAt = time.Now()

	d.token, err = state.LoadOrCreateToken(p.StateDir)
	var ce *state.CorruptError
	if errors.As(err, &ce) {
		// A token nobody can use: kept aside, and a new one made. Tools
		// started with the old one were refused already. Should it not
		// move, the daemon does not start: it has no token to serve with.
		if !d.setAside("token file", ce.Path, ce.Err, "a new token is made (restart tools started before)") {
			return fail(&StartError{Message: err.Error(),
				Hint: fmt.Sprintf("the daemon could not move it aside: move %s out of the way, or make %s writable; a new token is then made", ce.Path, p.StateDir)})
		}
		d.token, err = state.LoadOrCreateToken(p.StateDir)
	}
	if err != nil {
		return fail(startError(err, false))
	}

	proxyLn, err := net.Listen("tcp", cfg.Listen())
	if err != nil {
		return fail(&StartError{Message: fmt.Sprintf("cannot listen on %s: %v", cfg.Listen(), err),
			Hint: "another program uses that port: set [daemon] listen in the keyfile to another port (\"127.0.0.1:0\" picks a free one)", Keyfile: false})
	}
	d.proxyURL = "http://" + proxyLn.Addr().String()

	// We hold the lock, so a socket file here is a dead daemon's.
	sock := p.SocketPath()
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		proxyLn.Close()
		return fail(startError(fmt.Errorf("remove stale socket: %w", err), false))
	}
	ctlLn, sockInfo, err := listenSocket(sock)
	if err != nil {
		proxyLn.Close()
		hint := "check that " + p.RuntimeDir + " is yours and writable, or set LLMKEY_RUNTIME_DIR to another directory"
		if len(sock) > 100 {
			hint = "the socket path is too long for UNIX sockets: set LLMKEY_RUNTIME_DIR to a shorter directory"
		}
		return fail(&StartError{Message: fmt.Sprintf("cannot listen on %s: %v", sock, err), Hint: hint})
	}
	d.runtime.ctlLn, d.runtime.sockInfo = ctlLn, sockInfo

	proxySrv := &http.Server{Handler: d, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
	ctlSrv := &http.Server{Handler: d.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	d.runtime.serve = func(ln net.Listener) { ctlSrv.Serve(peerListener{Listener: ln, uid: os.Getuid(), log: d.log}) }
	go proxySrv.Serve(proxyLn)
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
	d.drain(cfg.Daemon.DrainTimeout.Or(state.DefaultDrainTimeout))
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
	if !d.runtime.lost {
		os.Remove(sock)
	}
	d.log.Info("stopped")
	return nil
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

// drain refuses new requests (the listener stays open, so they get a
// clear "draining" answer instead of a refused connection) and waits for
// those in flight, streams included, up to timeout.
func (d *Daemon) drain(timeout time.Duration) {
	d.draining.Store(true)
	deadline := time.Now().Add(timeout)
	for d.inFlight.Load() > 0 {
		if time.Now().After(deadline) {
			d.log.Warn("drain timeout: exiting with requests in flight", "in_flight", d.inFlight.Load(), "timeout", timeout)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startError(err error, keyfile bool) *StartError {
	e := &StartError{Message: err.Error(), Keyfile: keyfile}
	var h interface{ HintText() string }
	if errors.As(err, &h) {
		e.Hint = h.HintText()
	}
	return e
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Pass the client's Accept-Encoding through and the bytes back
		// untouched; never decompress on the client's behalf.
		DisableCompression: true,
		// Each upstream connection holds both buffers for as long as it
		// lives. A request is written once per use, and reads and writes
		// larger than a buffer bypass it (the answer's copy buffer is
		// 4 KiB): smaller buffers cost a few more syscalls on a long
		// header block, and save 5 KiB per open stream.
		WriteBufferSize: 1 << 10,
		ReadBufferSize:  2 << 10,
	}
}
