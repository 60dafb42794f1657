// SPDX-License-Identifier: MIT

package daemon

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Editors save by writing a new file and renaming it over the old one, and
// the keyfile's directory may itself be replaced, so we watch the
// directory (not the file), its parent (to see the directory come back),
// and, for a keyfile that is a symlink, its target's directory; a short
// debounce folds the burst of events one save makes into one reload. A
// directory that is gone is waited for on the nearest of its parents that
// is there, and that watch ends once it is back. Nothing polls while the
// watches hold: only a directory that cannot be watched (notifications
// are not to be had, or the kernel's limit on watches is reached) is
// looked at once a second until it can be.
const reloadDebounce = 50 * time.Millisecond

var pollInterval = time.Second // a var for the test that shows nothing polls

func (d *Daemon) watchKeyfile(ctx context.Context) {
	kw := &keyfileWatch{path: d.opts.Paths.Keyfile, watched: map[string]bool{}}
	kw.dir, kw.base = filepath.Dir(kw.path), filepath.Base(kw.path)
	var events chan fsnotify.Event
	var errs chan error
	var err error
	if kw.w, err = fsnotify.NewWatcher(); err != nil {
		d.log.Warn("cannot watch the keyfile; polling it instead", "err", err)
	} else {
		defer kw.w.Close()
		events, errs = kw.w.Events, kw.w.Errors
	}
	var poll <-chan time.Time
	if _, heard := kw.watch(); !heard {
		poll = time.After(pollInterval)
	}

	last := fileID(kw.path)
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			reload, heard := kw.event(ev)
			if reload {
				debounce = time.After(reloadDebounce)
			}
			if !heard && poll == nil {
				poll = time.After(pollInterval)
			}
		case err := <-errs:
			d.log.Warn("keyfile watcher", "err", err)
		case <-poll:
			poll = nil
			if _, heard := kw.watch(); !heard {
				poll = time.After(pollInterval) // not yet: look again
			}
			if id := fileID(kw.path); id != last {
				debounce = time.After(reloadDebounce)
			}
		case <-debounce:
			debounce = nil
			last = fileID(kw.path)
			d.reload("keyfile changed")
		}
	}
}

// keyfileWatch is what the watcher of the keyfile watches.
type keyfileWatch struct {
	w         *fsnotify.Watcher // nil: nothing can be watched, all is polled
	path      string            // the keyfile
	dir, base string            // its directory and name
	targetDir string            // for a symlinked keyfile, its target's directory
	watched   map[string]bool
}

// event takes in one event: whether the keyfile may have changed, and
// whether everything it needs watched still is heard of (else it must
// be polled).
func (kw *keyfileWatch) event(ev fsnotify.Event) (reload, heard bool) {
	reload = filepath.Base(ev.Name) == kw.base || ev.Name == kw.dir || (kw.targetDir != "" && filepath.Dir(ev.Name) == kw.targetDir)
	if kw.watched[ev.Name] && ev.Has(fsnotify.Remove|fsnotify.Rename) {
		delete(kw.watched, ev.Name)
	}
	heard = true
	if ev.Name == kw.dir && ev.Has(fsnotify.Create) || !kw.all() {
		was := kw.all()
		var all bool
		all, heard = kw.watch()
		if all && !was {
			// Back: the keyfile may have been written before its
			// directory was watched again.
			reload = true
		}
	}
	return reload, heard
}

// all reports whether the keyfile's directory (and a link's target's)
// is watched.
func (kw *keyfileWatch) all() bool {
	return kw.watched[kw.dir] && (kw.targetDir == "" || kw.watched[kw.targetDir])
}

// watch adds what is not watched yet, and drops the watches on parents
// that were only waiting for a directory to come back. It reports
// whether the keyfile's directory (and a link's target's) is watched,
// and whether each one that is not is waited for on a parent (else it
// must be polled).
func (kw *keyfileWatch) watch() (all, heard bool) {
	if kw.w == nil {
		return false, false
	}
	heard = true
	want := []string{kw.dir, filepath.Dir(kw.dir)}
	if t, err := filepath.EvalSymlinks(kw.path); err == nil && filepath.Dir(t) != kw.dir {
		kw.targetDir = filepath.Dir(t)
	}
	if kw.targetDir != "" {
		want = append(want, kw.targetDir)
	}
	needed := map[string]bool{}
	for _, target := range want {
		var path []string
		path, heard = kw.place(target, heard)
		for _, y := range path {
			needed[y] = true
		}
	}
	for x := range kw.watched {
		if !needed[x] {
			kw.w.Remove(x)
			delete(kw.watched, x)
		}
	}
	return kw.all(), heard
}

// place watches target, or else the nearest of its parents that is
// there, and returns the directories from target up to the one watched;
// heard turns false when one cannot be watched (then it is polled). A
// directory made between its own watch failing and its parent's taking
// is one the parent will never hear of: then it looks again from target
// (a few times: it is being made now).
func (kw *keyfileWatch) place(target string, heard bool) ([]string, bool) {
	for try := 0; ; try++ {
		var path []string
		x := target
		for ; ; x = filepath.Dir(x) {
			path = append(path, x)
			if kw.watched[x] {
				break
			}
			err := kw.w.Add(x)
			if err == nil {
				kw.watched[x] = true
				break
			}
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || x == filepath.Dir(x) {
				heard = false // cannot be watched: polled
				break
			}
		}
		if x == target || !heard || !madeUnder(x, target) || try == 9 {
			return path, heard
		}
	}
}

// madeUnder reports whether the directory below dir on the way to target
// is there: made after its watch failed, so dir's watch did not see it.
func madeUnder(dir, target string) bool {
	rel, err := filepath.Rel(dir, target)
	if err != nil || rel == "." {
		return false
	}
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	_, err = os.Lstat(filepath.Join(dir, first))
	return err == nil
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
