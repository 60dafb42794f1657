// SPDX-License-Identifier: MIT

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/state"
)

// The keeper makes the disk follow the daemon's memory: it writes usage
// that changed (keepEvery after the first change, so that a burst is one
// write), and puts back any of its files that someone removed: the state
// dir, the usage files, the token, disabled.json, tokens.json, and in the
// runtime dir the lock and the control socket. It hears of both without looking: the
// ledger says when the counts change, and the kernel (inotify, kqueue)
// when anything in the two dirs or their parents is removed. When a write
// fails, the daemon goes on serving from memory and tries again with
// backoff until the disk takes the writes again. Idle, it sleeps: no
// timer runs but the one for the next UTC day.
const (
	keepEvery = 250 * time.Millisecond
	// removalQuiet is how long after the last removal seen the keeper
	// puts things back.
	removalQuiet = 50 * time.Millisecond
	maxBackoff   = 4 * time.Second
	// failLogEvery bounds how often a failure that goes on is logged.
	failLogEvery = time.Minute
	// contestedFor is how long another daemon may hold the lock in a
	// runtime dir put back, without serving, before this one steps aside;
	// it is looked at again every contestedEvery.
	contestedFor   = 2 * time.Second
	contestedEvery = 100 * time.Millisecond
	// refusedEvery is how often a runtime dir refused as unsafe is looked
	// at again, to serve there once it is fixed.
	refusedEvery = time.Second
)

// persistence is how the state dir's writes are going, for status.
type persistence struct {
	mu           sync.Mutex
	savedGen     uint64    // the ledger generation on disk
	lastOK       time.Time // the last time every state file was written
	failingSince time.Time // zero while writes work
	lastErr      string
	// unsafeHint is how to fix a state dir refused because another user
	// could swap it (see state.EnsurePrivateDir); "" for other failures.
	unsafeHint string
	backoff    time.Duration
	nextTry    time.Time
	lastLogged time.Time
	// historyFrom is the RecentFrom day usage.json was last written for;
	// it is rewritten when the day moves on, or when a rename changed its
	// rows (historyGen: the ledger's historyGeneration it holds). Owned
	// by the keeper.
	historyFrom string
	historyGen  uint64
	// notice is something a person should know about the state on disk
	// that is not a failure: a damaged state file set aside at start.
	notice string
}

// addNotice adds to what status says about the state on disk.
func (p *persistence) addNotice(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.notice != "" {
		p.notice += "; "
	}
	p.notice += s
}

func (d *Daemon) stateStatus() (control.StateStatus, string) {
	p := &d.persist
	p.mu.Lock()
	defer p.mu.Unlock()
	st := control.StateStatus{Dir: d.opts.Paths.StateDir, Error: p.lastErr, Notice: p.notice}
	if !p.lastOK.IsZero() {
		t := p.lastOK
		st.PersistedAt = &t
	}
	if p.failingSince.IsZero() {
		return st, ""
	}
	t := p.failingSince
	st.FailingSince = &t
	since := p.lastOK
	if since.IsZero() {
		since = d.startedAt
	}
	once := "once " + d.opts.Paths.StateDir + " is writable again"
	if p.unsafeHint != "" {
		once = "once that is fixed (" + p.unsafeHint + ")"
	}
	problem := fmt.Sprintf("state not persisted since %s: %s; the daemon keeps serving and counting in memory, and writes it all %s",
		since.Local().Format("2006-01-02 15:04:05"), p.lastErr, once)
	return st, problem
}

// keep runs the keeper until ctx ends.
func (d *Daemon) keep(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		// No notifications (inotify exhausted): look every keepEvery.
		d.log.Warn("cannot watch the state and runtime dirs; checking them every moment instead", "err", err)
		t := time.NewTicker(keepEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				d.keepRuntime()
				d.keepState(false)
			}
		}
	}
	defer w.Close()
	watched := map[string]bool{}
	watch := func() {
		for _, dir := range d.watchable() {
			if !watched[dir] && w.Add(dir) == nil {
				watched[dir] = true
			}
		}
	}
	watch()
	var write, retry, day, removed <-chan time.Time
	nextDay := func() <-chan time.Time {
		now := d.clock.Now().UTC()
		return time.After(time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 1, 0, time.UTC).Sub(now))
	}
	day = nextDay()
	check := func() {
		d.keepRuntime()
		d.keepState(false)
		watch()
		retry = nil
		if wait := d.retryIn(); wait > 0 {
			retry = time.After(wait)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.usage.changed:
			if write == nil {
				write = time.After(keepEvery)
			}
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// The keeper's own writes rename a temporary file into
			// place: a write, not a removal to repair.
			if (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) && !state.IsAtomicTemp(ev.Name) {
				if watched[ev.Name] {
					delete(watched, ev.Name) // the dir itself: watched again once put back
				}
				// After a moment of quiet: an rm -rf still at work would
				// find the dir put back under it.
				removed = time.After(removalQuiet)
			}
		case err := <-w.Errors:
			d.log.Warn("watching the state and runtime dirs", "err", err)
		case <-write:
			write = nil
			check()
		case <-removed:
			removed = nil
			check()
		case <-retry:
			check()
		case <-day:
			day = nextDay()
			check()
		}
	}
}

// watchable are the dirs the keeper watches for removals: the state and
// runtime dirs and their parents, less those refused now, since a watch
// follows symlinks another user may have planted. The keeper looks at
// those again every refusedEvery.
func (d *Daemon) watchable() []string {
	p := d.opts.Paths
	var out []string
	if !d.persist.unsafe() {
		out = append(out, p.StateDir, filepath.Dir(p.StateDir))
	}
	if d.runtime.refused.Load() == nil {
		out = append(out, p.RuntimeDir, filepath.Dir(p.RuntimeDir))
	}
	return out
}

func (p *persistence) unsafe() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unsafeHint != ""
}

// otherServes reports whether another daemon answers on the control
// socket at p.
func otherServes(p state.Paths) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	st, err := control.NewClient(p).Status(ctx)
	return err == nil && st.PID != os.Getpid()
}

// retryIn is how soon a failed write, or a runtime dir another daemon
// holds the lock of, is looked at again; 0 when there is none.
func (d *Daemon) retryIn() time.Duration {
	if !d.runtime.contested.IsZero() {
		return contestedEvery
	}
	if d.runtime.refused.Load() != nil {
		return refusedEvery
	}
	p := &d.persist
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failingSince.IsZero() && !d.overridesDirty.Load() && !d.tokens.dirty() {
		return 0
	}
	return max(p.nextTry.Sub(d.clock.Now()), 10*time.Millisecond)
}

// keepState writes what changed or went missing. force writes usage even
// when it seems unchanged, and ignores the backoff: the last write before
// the daemon exits.
func (d *Daemon) keepState(force bool) {
	p := &d.persist
	now := d.clock.Now()
	p.mu.Lock()
	if !force && now.Before(p.nextTry) {
		p.mu.Unlock()
		return
	}
	saved := p.savedGen
	p.mu.Unlock()

	gen, err := d.writeState(force, saved)

	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.savedGen = gen
		p.lastOK = now
		if !p.failingSince.IsZero() {
			d.log.Info("state written again", "dir", d.opts.Paths.StateDir, "failing_for", now.Sub(p.failingSince).Round(time.Millisecond))
		}
		p.failingSince, p.lastErr, p.unsafeHint, p.backoff, p.nextTry = time.Time{}, "", "", 0, time.Time{}
		return
	}
	d.metrics.stateWriteFailures.Inc()
	if p.failingSince.IsZero() {
		p.failingSince = now
	}
	again := p.lastErr == err.Error()
	p.lastErr, p.unsafeHint = err.Error(), ""
	p.backoff = min(max(2*p.backoff, keepEvery), maxBackoff)
	p.nextTry = now.Add(p.backoff)
	var ue *state.UnsafeDirError
	if errors.As(err, &ue) {
		p.unsafeHint = ue.Hint
		if !again {
			d.log.Error("refusing the state dir: another user could swap it or what it holds; nothing is written there until that is fixed, and the daemon counts in memory",
				"dir", d.opts.Paths.StateDir, "err", err, "hint", ue.Hint)
			p.lastLogged = now
		}
		return
	}
	if now.Sub(p.lastLogged) >= failLogEvery {
		p.lastLogged = now
		d.log.Warn("could not write state; keeping it in memory and trying again", "err", err, "retry_in", p.backoff)
	}
}

// writeState writes usage when it changed since generation saved or its
// files are gone, and puts back the token, disabled.json and tokens.json
// (which it also writes when a change to the scoped tokens could not be).
// It returns the generation now on disk.
func (d *Daemon) writeState(force bool, saved uint64) (uint64, error) {
	dir := d.opts.Paths.StateDir
	histPath, recentPath := state.UsageFile(dir), state.UsageRecentFile(dir)
	from := state.RecentFrom(d.clock.Now())
	gen := d.usage.generation()
	histGen := d.usage.historyGeneration() // before the snapshot below
	writeHist := force || from != d.persist.historyFrom || histGen != d.persist.historyGen || !exists(histPath)
	writeRecent := force || gen != saved || !exists(recentPath)
	writeToken := !exists(state.TokenFile(dir))
	writeOverrides := d.overridesMissing()
	writeTokens := d.tokens.unsaved()
	relock := d.runtime.stateLock != nil && !sameFile(d.runtime.stateLock, d.opts.Paths.StateLockPath())
	if !writeHist && !writeRecent && !writeToken && !writeOverrides && !writeTokens && !relock {
		return gen, nil
	}
	missing := !exists(dir)
	if err := state.EnsurePrivateDir(dir); err != nil {
		return saved, err
	}
	if missing {
		// The line also brings daemon.log back: the log opens its file
		// anew when it writes and finds it gone.
		d.log.Info("the state dir was removed; putting it back with all it held", "dir", dir)
	}
	if relock {
		if err := d.relockState(); err != nil {
			return saved, err
		}
	}
	if writeToken {
		if err := state.WriteAtomic(state.TokenFile(dir), []byte(d.proxy.Token+"\n"), 0o600); err != nil {
			return saved, err
		}
	}
	if writeOverrides {
		if err := d.saveOverrides(); err != nil {
			return saved, err
		}
		d.overridesDirty.Store(false)
	}
	if writeTokens {
		if err := d.tokens.save(true); err != nil {
			return saved, err
		}
	}
	if !writeHist && !writeRecent {
		return gen, nil
	}
	g, err := d.writeUsage(from, histGen, writeHist)
	if err != nil {
		return saved, err
	}
	return g, nil
}

// relockState takes the state dir's lock again, on the lock file put
// back with the dir.
func (d *Daemon) relockState() error {
	f, err := acquireLock(d.opts.Paths.StateLockPath())
	if errors.Is(err, errLocked) {
		// Another daemon started on the state dir while it was gone:
		// two writers would lose counts. This one stops.
		d.log.Warn("another daemon took over the state dir; this one stops", "pid", control.LockHolder(d.opts.Paths.StateLockPath()))
		d.requestStop()
		return err
	}
	if err != nil {
		return err
	}
	d.runtime.stateLock.Close()
	d.runtime.stateLock = f
	return nil
}

// writeUsage writes the usage of the days from on (usage-recent.json)
// and, with hist, of the days before (usage.json), as of histGen, the
// ledger's historyGeneration read before. It returns the generation
// written.
func (d *Daemon) writeUsage(from string, histGen uint64, hist bool) (uint64, error) {
	dir := d.opts.Paths.StateDir
	rows, g := d.usage.snapshot()
	var before, recent []state.UsageRow
	for _, r := range rows {
		if r.Day < from {
			before = append(before, r)
		} else {
			recent = append(recent, r)
		}
	}
	write := func(path string, rows []state.UsageRow) error {
		u := state.Usage{Version: state.UsageVersion, UpdatedAt: d.clock.Now().UTC(), Rows: rows}
		return state.WriteAtomic(path, u.Marshal(), 0o600)
	}
	// The history first: a crash between the two leaves a row in both
	// files, which a load reads once, rather than in neither.
	if hist {
		if err := write(state.UsageFile(dir), before); err != nil {
			return 0, err
		}
		d.persist.historyFrom, d.persist.historyGen = from, histGen
	}
	if err := write(state.UsageRecentFile(dir), recent); err != nil {
		return 0, err
	}
	return g, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// loadUsage reads the usage files at start. A damaged one is set aside,
// never used and never overwritten in place: its rows count again from
// zero, and the daemon says so.
func (d *Daemon) loadUsage() {
	dir := d.opts.Paths.StateDir
	var rows []state.UsageRow
	for range 3 { // each pass sets aside at most one damaged file
		u, err := state.LoadUsageDir(dir)
		var ce *state.CorruptError
		if err == nil {
			rows = u.Rows
			if u.Clamped > 0 {
				d.log.Warn("usage rows held counts out of range (below 0, or over 10^12 in a day); read each as the bound it passed",
					"dir", dir, "rows", u.Clamped)
			}
			break
		}
		if !errors.As(err, &ce) {
			d.log.Warn("could not read usage; counting from zero in memory", "dir", dir, "err", err)
			break
		}
		if !d.setAside("usage file", ce.Path, ce.Err, "its counts start again from zero") {
			break
		}
	}
	d.usage.load(rows)
}

// setAside moves a damaged state file out of the way, never to be used
// nor overwritten, and says so in the log and in status; then is what
// that means for the user. It reports whether the file was moved.
func (d *Daemon) setAside(what, path string, cause error, then string) bool {
	to, err := state.SetAside(path, d.clock.Now())
	if err != nil {
		d.log.Warn(what+" is damaged and could not be set aside; "+then, "path", path, "err", cause, "rename_err", err)
		d.persist.addNotice(fmt.Sprintf("%s is damaged (%v) and could not be moved aside (%v); %s", path, cause, err, then))
		return false
	}
	d.log.Warn(what+" is damaged: set it aside; "+then, "path", path, "err", cause, "kept_as", to)
	d.persist.addNotice(fmt.Sprintf("%s was damaged (%v) and was kept as %s; %s", path, cause, to, then))
	return true
}

// seedToday counts today's and this month's usage from before a restart
// toward each key's daily limits and dollar budgets. The caller holds
// d.mu.
func (d *Daemon) seedToday() {
	rows, _ := d.usage.snapshot()
	snap := d.snap.Load()
	for id, seed := range seeds(rows, d.clock.Now(), state.NewPrices(snap.Config.Pricing)) {
		u := snap.Providers[id.Provider]
		if u == nil || u.Keys[id.Key].Fingerprint != id.Fingerprint {
			continue // the key is gone, or has another secret now
		}
		u.Pool.SeedToday(id.Key, seed)
	}
}

// runtimeFiles are the lock and the control socket as the daemon made
// them, to notice when they are removed or replaced.
type runtimeFiles struct {
	lock      *os.File
	stateLock *os.File // the state dir's, put back by the keeper too
	sockInfo  os.FileInfo
	ctlLn     net.Listener
	serve     func(net.Listener)
	problem   time.Time // last time a failure to put them back was logged
	// lost is set when another daemon owns the runtime dir now: its
	// socket must not be removed on the way out.
	lost bool
	// handedOver: the sockets came from socket activation.
	handedOver bool
	// replaced: the control socket the socket unit holds was removed from
	// its path, and this daemon serves one of its own there.
	replaced atomic.Bool
	// contested is when another daemon was first seen holding the lock
	// in the runtime dir put back (zero: none).
	contested time.Time
	// refused is why the runtime dir is not used now (nil: it is): another
	// user could swap it, so the keeper follows and writes nothing there.
	// Set by the keeper, read by status.
	refused atomic.Pointer[string]
}

// keepRuntime puts back the lock and the socket when the runtime dir or
// they were removed, so that the CLI reaches this daemon again instead of
// starting a second one.
func (d *Daemon) keepRuntime() {
	rt := &d.runtime
	p := d.opts.Paths
	// Checked each time, before anything in it is looked at: another user
	// who can write a directory on the way could have swapped it.
	dirErr := state.EnsureRuntimeDir(p.RuntimeDir)
	if d.refuseRuntime(dirErr) {
		return
	}
	lockOK := sameFile(rt.lock, p.LockPath())
	sockOK := false
	if fi, err := os.Lstat(p.SocketPath()); err == nil && rt.sockInfo != nil {
		sockOK = os.SameFile(fi, rt.sockInfo)
	}
	if lockOK && sockOK {
		return
	}
	if dirErr != nil {
		d.runtimeFailed("runtime dir", dirErr)
		return
	}
	if !lockOK {
		f, err := acquireLock(p.LockPath())
		if errors.Is(err, errLocked) {
			d.lockContested()
			return
		}
		if err != nil {
			d.runtimeFailed("lock", err)
			return
		}
		rt.lock.Close()
		rt.lock, rt.contested = f, time.Time{}
	}
	if !sockOK {
		os.Remove(p.SocketPath())
		ln, fi, err := listenSocket(p.SocketPath())
		if err != nil {
			d.runtimeFailed("socket", err)
			return
		}
		if old, ok := rt.ctlLn.(*net.UnixListener); ok {
			old.SetUnlinkOnClose(false) // its path is the new socket's now
			old.Close()
		}
		rt.ctlLn, rt.sockInfo = ln, fi
		go rt.serve(ln)
		if rt.handedOver {
			d.replacedUnitSocket()
		}
	}
	d.log.Info("runtime files were removed; put them back", "dir", p.RuntimeDir, "lock", !lockOK, "socket", !sockOK)
}

// runtimeFailed logs, at most once a minute, that the runtime files
// could not be put back.
func (d *Daemon) runtimeFailed(what string, err error) {
	rt := &d.runtime
	if d.clock.Now().Sub(rt.problem) >= failLogEvery {
		rt.problem = d.clock.Now()
		d.log.Warn("could not put back the runtime files; the CLI cannot reach this daemon", "what", what, "err", err)
	}
}

// lockContested is what to do when another daemon holds the lock in the
// runtime dir put back. One the CLI started in the moment before this one
// put its files back cannot serve (this one holds the state dir's lock)
// and exits at once: wait for that. One that serves (its socket answers)
// is the one the CLI reaches now, and two would fight over the port: step
// aside.
func (d *Daemon) lockContested() {
	rt, p := &d.runtime, d.opts.Paths
	now := d.clock.Now()
	if rt.contested.IsZero() {
		rt.contested = now
	}
	if now.Sub(rt.contested) < contestedFor && !otherServes(p) {
		return // looked at again in contestedEvery (retryIn)
	}
	rt.contested = time.Time{}
	d.log.Warn("another daemon took over the runtime dir; this one stops", "pid", control.LockHolder(p.LockPath()))
	rt.lost = true
	if ul, ok := rt.ctlLn.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	d.requestStop()
}

// refuseRuntime reports whether err refuses the runtime dir as one
// another user could swap, and says so once per cause: in the log and,
// until the dir is fixed, in status. A socket still in place keeps
// serving; nothing is put back there.
func (d *Daemon) refuseRuntime(err error) bool {
	rt := &d.runtime
	var ue *state.UnsafeDirError
	if !errors.As(err, &ue) {
		if rt.refused.Swap(nil) != nil {
			d.log.Info("the runtime dir is safe again", "dir", d.opts.Paths.RuntimeDir)
		}
		return false
	}
	problem := fmt.Sprintf("refusing the runtime dir %s: %v; the daemon puts no socket there until that is fixed (%s)", d.opts.Paths.RuntimeDir, err, ue.Hint)
	if old := rt.refused.Swap(&problem); old == nil || *old != problem {
		d.log.Error("refusing the runtime dir: another user could swap it; this daemon puts nothing there until that is fixed",
			"dir", d.opts.Paths.RuntimeDir, "err", err, "hint", ue.Hint)
	}
	return true
}

func sameFile(f *os.File, path string) bool {
	if f == nil {
		return false
	}
	held, err1 := f.Stat()
	now, err2 := os.Lstat(path)
	return err1 == nil && err2 == nil && os.SameFile(held, now)
}
