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
	path := d.opts.Paths.Keyfile
	dir, base := filepath.Dir(path), filepath.Base(path)

	var events chan fsnotify.Event
	var errs chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("cannot watch the keyfile; polling it instead", "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	watched := map[string]bool{}
	targetDir := ""
	// watch adds what is not watched yet, and drops the watches on
	// parents that were only waiting for a directory to come back. It
	// reports whether the keyfile's directory (and a link's target's) is
	// watched, and whether each one that is not is waited for on a parent
	// (else it must be polled).
	watch := func() (all, heard bool) {
		if w == nil {
			return false, false
		}
		heard = true
		want := []string{dir, filepath.Dir(dir)}
		if t, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(t) != dir {
			targetDir = filepath.Dir(t)
		}
		if targetDir != "" {
			want = append(want, targetDir)
		}
		needed := map[string]bool{}
		for _, target := range want {
			// target, or else the nearest of its parents that is there. A
			// directory made between its own watch failing and its
			// parent's taking is one the parent will never hear of: then
			// look again from target (a few times: it is being made now).
			for try := 0; ; try++ {
				var path []string
				x := target
				for ; ; x = filepath.Dir(x) {
					path = append(path, x)
					if watched[x] {
						break
					}
					err := w.Add(x)
					if err == nil {
						watched[x] = true
						break
					}
					if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || x == filepath.Dir(x) {
						heard = false // cannot be watched: polled
						break
					}
				}
				if x == target || !heard || !madeUnder(x, target) || try == 9 {
					for _, y := range path {
						needed[y] = true
					}
					break
				}
			}
		}
		for x := range watched {
			if !needed[x] {
				w.Remove(x)
				delete(watched, x)
			}
		}
		return watched[dir] && (targetDir == "" || watched[targetDir]), heard
	}
	var poll <-chan time.Time
	if _, heard := watch(); !heard {
		poll = time.After(pollInterval)
	}

	last := fileID(path)
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
			if filepath.Base(ev.Name) == base || ev.Name == dir || (targetDir != "" && filepath.Dir(ev.Name) == targetDir) {
				debounce = time.After(reloadDebounce)
			}
			if watched[ev.Name] && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				delete(watched, ev.Name)
			}
			if ev.Name == dir && ev.Has(fsnotify.Create) || !watched[dir] || (targetDir != "" && !watched[targetDir]) {
				was := watched[dir] && (targetDir == "" || watched[targetDir])
				all, heard := watch()
				if all && !was {
					// Back: the keyfile may have been written before
					// its directory was watched again.
					debounce = time.After(reloadDebounce)
				}
				if !heard && poll == nil {
					poll = time.After(pollInterval)
				}
			}
		case err := <-errs:
			d.log.Warn("keyfile watcher", "err", err)
		case <-poll:
			poll = nil
			if _, heard := watch(); !heard {
				poll = time.After(pollInterval) // not yet: look again
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
