package daemon

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/llmkey/llmkey/state"
)

// Editors save by writing a new file and renaming it over the old one, and
// the keyfile's directory may itself be replaced, so we watch the
// directory (not the file) and also poll the file's identity once a
// second; either notices a change, and a short debounce folds the burst of
// events one save makes into one reload.
const (
	reloadDebounce = 50 * time.Millisecond
	pollInterval   = time.Second
)

func (d *Daemon) watchKeyfile(ctx context.Context) {
	path := d.opts.Paths.Keyfile
	dir, base := filepath.Dir(path), filepath.Base(path)

	var events chan fsnotify.Event
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("cannot watch the keyfile; polling it instead", "err", err)
	} else {
		defer w.Close()
		events = w.Events
	}
	watching := false
	watch := func() {
		if w == nil || watching {
			return
		}
		if err := w.Add(dir); err == nil {
			watching = true
		}
	}
	watch()

	last := fileID(path)
	var debounce <-chan time.Time
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		var errs chan error
		if w != nil {
			errs = w.Errors
		}
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Base(ev.Name) == base {
				debounce = time.After(reloadDebounce)
			}
			if ev.Name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				watching = false
			}
		case err := <-errs:
			d.log.Warn("keyfile watcher", "err", err)
		case <-poll.C:
			if !watching {
				watch() // the directory came back
			}
			if id := fileID(path); id != last {
				debounce = time.After(reloadDebounce)
			}
		case <-debounce:
			debounce = nil
			last = fileID(path)
			d.reload("keyfile changed")
		}
	}
}

// fileIdentity changes whenever the file is replaced or written.
type fileIdentity struct {
	ino   uint64
	size  int64
	mtime time.Time
	mode  fs.FileMode
	ok    bool
}

func fileID(path string) fileIdentity {
	fi, err := os.Stat(path)
	if err != nil {
		return fileIdentity{}
	}
	return fileIdentity{ino: inode(fi), size: fi.Size(), mtime: fi.ModTime(), mode: fi.Mode(), ok: true}
}

// reload loads the keyfile and, if it is valid, serves it. An invalid or
// missing keyfile never takes the service down: the last good one keeps
// serving and the error shows in status and the log.
func (d *Daemon) reload(reason string) {
	cfg, err := state.Load(d.opts.Paths.Keyfile)
	var unavailable map[string]string
	if err == nil {
		cfg, unavailable = d.readSecrets(cfg)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.keyfileErr = err
		if errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("keyfile is gone; still serving the keys loaded before", "keyfile", d.opts.Paths.Keyfile)
		} else {
			d.log.Warn("keyfile not reloaded; still serving the last good one", "reason", reason, "err", err)
		}
		return
	}
	old := d.snap.Load()
	if cfg.Listen() != old.Config.Listen() && old.Config.Listen() != "" {
		d.log.Warn("[daemon] listen changed; it takes effect on restart (llmkey restart)", "listen", cfg.Listen())
	}
	if err := d.publish(cfg, unavailable); err != nil {
		d.keyfileErr = err
		d.log.Error("keyfile not reloaded; still serving the last good one", "reason", reason, "err", err)
		return
	}
	d.keyfileErr, d.servedGood = nil, true
	d.loadedAt = d.clock.Now()
	d.log.Info("keyfile reloaded", "reason", reason, "keys", len(cfg.Keys), "providers", len(cfg.ProviderNames()))
}
