// SPDX-License-Identifier: MIT

package daemon

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/llmkey/llmkey/daemon/proxy"
	"github.com/llmkey/llmkey/daemon/secrets"
	"github.com/llmkey/llmkey/state"
)

// secretWait is how long a load waits for its secrets before it serves
// without those still being read; well under the CLI's wait for a
// starting daemon (a var for the tests).
var secretWait = 5 * time.Second

// secretReaders is how many secrets one load reads at once.
const secretReaders = 4

// secretRetry is how soon a secret that could not be read (a locked
// keychain, a failing secret_cmd) is tried again.
const secretRetry = 30 * time.Second

// readingSecret is the reason a key whose secret is being read does not
// serve yet.
const readingSecret = "reading its secret"

// loads orders the loads of the keyfile (guarded by Daemon.mu). A load
// parses the keyfile, reads its keys' secrets (the keychain, commands)
// and serves it. Loads overlap (the watcher, SIGHUP, llmkey reload and
// the retry of unread secrets each start one, and a secret_cmd may take
// seconds), so they are numbered as they begin, and one that a newer
// load overtook stops reading and serves nothing: what the user removed
// never comes back because an older read finished late. Secrets are read
// a few at a time; a load serves once they are read, or after secretWait
// with those not read yet marked "reading its secret" (or, on a reload,
// still serving the secret read before from the same place), and then
// serves each as it comes in.
type loads struct {
	began  uint64             // the number of the newest load
	valid  uint64             // the newest whose keyfile parsed
	failed uint64             // the newest whose keyfile did not
	cancel context.CancelFunc // ends the reads of load valid
	retry  *time.Timer        // reloads while a secret could not be read
}

// reload loads the keyfile and, if it is valid, serves it. An invalid or
// missing keyfile never takes the service down: the last good one keeps
// serving and the error shows in status and the log.
func (d *Daemon) reload(reason string) {
	gen := d.beginLoad()
	cfg, err := state.Load(d.opts.Paths.Keyfile)
	if err != nil {
		d.loadFailed(gen, reason, err)
		return
	}
	l := d.startLoad(gen, cfg)
	if l == nil {
		return
	}
	l.collect(time.After(secretWait))
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen != d.loads.valid {
		d.log.Info("keyfile load overtaken by a newer one; not served", "reason", reason)
		return
	}
	d.warnListen(cfg)
	if err := d.serveLoad(l); err != nil {
		d.keyfileErr = err
		d.log.Error("keyfile not reloaded; still serving the last good one", "reason", reason, "err", err)
		return
	}
	if d.loads.failed < gen {
		d.keyfileErr = nil
	}
	d.servedGood = true
	d.loadedAt = d.clock.Now()
	d.log.Info("keyfile reloaded", "reason", reason, "keys", len(cfg.Keys), "providers", len(cfg.ProviderNames()))
}

// loadFirst serves cfg, the keyfile the daemon starts with.
func (d *Daemon) loadFirst(cfg *state.Config) error {
	l := d.startLoad(d.beginLoad(), cfg)
	l.collect(time.After(secretWait))
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.serveLoad(l)
	if err == nil {
		d.seedToday()
	}
	return err
}

// beginLoad numbers a new load.
func (d *Daemon) beginLoad() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.loads.began++
	return d.loads.began
}

// loadFailed records that load gen found no keyfile it could serve,
// unless a newer load parsed one.
func (d *Daemon) loadFailed(gen uint64, reason string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen < d.loads.valid {
		return
	}
	d.loads.failed = gen
	d.keyfileErr = err
	if errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("keyfile is gone; still serving the keys loaded before", "keyfile", d.opts.Paths.Keyfile)
	} else {
		d.log.Warn("keyfile not reloaded; still serving the last good one", "reason", reason, "err", err)
	}
}

// warnListen says that a changed [daemon] listen waits for a restart.
// The caller holds d.mu.
func (d *Daemon) warnListen(cfg *state.Config) {
	old := d.snap.Load()
	if cfg.Listen() == old.Config.Listen() || old.Config.Listen() == "" {
		return
	}
	if d.runtime.handedOver {
		d.log.Warn("[daemon] listen changed; the socket unit holds the port: run llmkey service install (it rewrites the socket unit and restarts it)", "listen", cfg.Listen())
	} else {
		d.log.Warn("[daemon] listen changed; it takes effect on restart (llmkey restart)", "listen", cfg.Listen())
	}
}

// startLoad makes load gen of cfg the newest valid one and starts reading
// its secrets, ending the reads of the one it overtakes; nil when a newer
// load parsed its keyfile first.
func (d *Daemon) startLoad(gen uint64, cfg *state.Config) *load {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen < d.loads.valid {
		return nil
	}
	if d.loads.cancel != nil {
		d.loads.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.loads.valid, d.loads.cancel = gen, cancel
	l := newLoad(gen, cfg)
	l.read(ctx, d.knownSecrets(cfg))
	return l
}

// knownSecrets are the secrets the daemon knows of: a failing command's
// message must show none of them. The caller holds d.mu.
func (d *Daemon) knownSecrets(cfg *state.Config) []string {
	var known []string
	if s := d.snap.Load(); s != nil {
		known = slices.Clone(s.Secrets)
	}
	for _, k := range cfg.Keys {
		if k.Secret != "" {
			known = append(known, k.Secret)
		}
	}
	return known
}

// serveLoad publishes what l has read, and goes on serving each secret
// it reads later while l stays the newest load. The caller holds d.mu.
func (d *Daemon) serveLoad(l *load) error {
	cfg, unavailable := l.served(d.snap.Load())
	if err := d.publish(cfg, unavailable); err != nil {
		return err
	}
	if l.left == 0 {
		d.retryUnread(l)
		return nil
	}
	go func() {
		for l.left > 0 {
			l.apply(<-l.results)
			d.mu.Lock()
			if l.gen == d.loads.valid {
				cfg, unavailable := l.served(d.snap.Load())
				d.publish(cfg, unavailable)
				if l.left == 0 {
					d.retryUnread(l)
				}
			}
			d.mu.Unlock()
		}
	}()
	return nil
}

// retryUnread loads the keyfile again in a while if a secret of l could
// not be read. The caller holds d.mu.
func (d *Daemon) retryUnread(l *load) {
	d.logUnread(l)
	if len(l.unavailable) == 0 || d.loads.retry != nil {
		return
	}
	d.loads.retry = time.AfterFunc(secretRetry, func() {
		d.mu.Lock()
		d.loads.retry = nil
		d.mu.Unlock()
		d.reload("reading secrets again")
	})
}

// logUnread says which secrets could not be read, once per key and
// reason (a wait counting down in it is no new reason; see sameWords),
// and which are read again: not at each retry. The caller holds d.mu.
func (d *Daemon) logUnread(l *load) {
	for _, ref := range slices.Sorted(maps.Keys(l.unavailable)) {
		if why := sameWords(l.unavailable[ref]); d.unread[ref] != why {
			d.log.Warn("a key's secret could not be read; the key serves nothing until it can (said again only if the reason changes)", "key", ref, "err", l.unavailable[ref])
			d.unread[ref] = why
		}
	}
	for ref := range d.unread {
		if _, still := l.unavailable[ref]; !still {
			delete(d.unread, ref)
			if prov, name, _ := strings.Cut(ref, "/"); l.cfg.Find(prov, name) >= 0 {
				d.log.Info("a key's secret was read again; the key serves", "key", ref)
			}
		}
	}
}

// load is one load's keyfile and the secrets read for it so far.
type load struct {
	gen         uint64
	cfg         *state.Config     // its keys' secrets filled in as they are read
	unavailable map[string]string // why, by PROVIDER/NAME, for those that could not be
	pending     map[int]bool      // keys (by index) whose secret is being read
	left        int               // reads not collected yet
	results     chan secretRead
}

type secretRead struct {
	i      int
	secret string
	err    error
}

func newLoad(gen uint64, cfg *state.Config) *load {
	c := *cfg
	c.Keys = slices.Clone(cfg.Keys)
	l := &load{gen: gen, cfg: &c, unavailable: map[string]string{}, pending: map[int]bool{}}
	for i, k := range c.Keys {
		if k.Secret == "" {
			l.pending[i] = true
		}
	}
	l.left = len(l.pending)
	l.results = make(chan secretRead, l.left)
	return l
}

// read starts reading the secrets, secretReaders at a time, until ctx ends.
func (l *load) read(ctx context.Context, known []string) {
	todo := make(chan int, len(l.pending))
	for i := range l.pending {
		todo <- i
	}
	close(todo)
	keys := slices.Clone(l.cfg.Keys)
	for range min(secretReaders, len(l.pending)) {
		go func() {
			for i := range todo {
				s, err := secrets.Read(ctx, keys[i], known...)
				l.results <- secretRead{i, s, err}
			}
		}()
	}
}

// collect takes in the secrets read until all are or until fires.
func (l *load) collect(until <-chan time.Time) {
	for l.left > 0 {
		select {
		case r := <-l.results:
			l.apply(r)
		case <-until:
			return
		}
	}
}

func (l *load) apply(r secretRead) {
	l.left--
	delete(l.pending, r.i)
	if r.err != nil {
		why := "secret not read: " + r.err.Error()
		if errors.As(r.err, new(*secrets.NoBusError)) {
			why += ": " + secrets.DaemonFix
		}
		l.unavailable[l.cfg.Keys[r.i].Ref()] = why
		return
	}
	l.cfg.Keys[r.i].Secret = r.secret
}

// served is what of l can be served now: the secrets read, and for those
// still being read, the one old serves from the same place, if any.
func (l *load) served(old *proxy.Snapshot) (*state.Config, map[string]string) {
	c := *l.cfg
	c.Keys = slices.Clone(l.cfg.Keys)
	unavailable := maps.Clone(l.unavailable)
	for i := range l.pending {
		if s := sameSource(old, c.Keys[i]); s != "" {
			c.Keys[i].Secret = s
		} else {
			unavailable[c.Keys[i].Ref()] = readingSecret
		}
	}
	return &c, unavailable
}

// sameSource is the secret old serves k with, when it was read from
// where k's is.
func sameSource(old *proxy.Snapshot, k state.Key) string {
	if old == nil {
		return ""
	}
	up := old.Providers[k.Provider]
	if up == nil {
		return ""
	}
	o, ok := up.Keys[k.Name]
	if !ok || o.Unavailable != "" || o.Keychain != k.Keychain || !slices.Equal(o.SecretCmd, k.SecretCmd) {
		return ""
	}
	return o.Secret
}
