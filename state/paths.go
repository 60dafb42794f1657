package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Paths are the three places llmkey uses, resolved once from the
// environment.
type Paths struct {
	Keyfile    string // the user's TOML keyfile
	StateDir   string // usage, token, logs; never a raw secret
	RuntimeDir string // socket, lock, pid
}

// Getenv is how this package reads the environment; os.Getenv in
// production, a map in tests.
type Getenv func(string) string

// ResolvePaths applies the overrides in order:
// explicit keyfile flag, LLMKEY_* variables, XDG variables, then the XDG
// defaults under $HOME.
func ResolvePaths(getenv Getenv, keyfileFlag string) (Paths, error) {
	home := getenv("HOME")
	// Each: the first override set, else the default under $HOME.
	resolve := func(what string, overrides [][2]string, underHome ...string) (string, error) {
		for _, o := range overrides {
			if v := getenv(o[0]); v != "" {
				return filepath.Join(append([]string{v}, strings.Fields(o[1])...)...), nil
			}
		}
		if home == "" {
			return "", fmt.Errorf("cannot find the %s: HOME is not set (set HOME or %s)", what, overrides[0][0])
		}
		return filepath.Join(append([]string{home}, underHome...)...), nil
	}
	var p Paths
	var err error
	if p.Keyfile = keyfileFlag; p.Keyfile == "" {
		p.Keyfile, err = resolve("keyfile", [][2]string{{"LLMKEY_KEYFILE", ""}, {"XDG_CONFIG_HOME", "llmkey keys.toml"}}, ".config", "llmkey", "keys.toml")
		if err != nil {
			return p, err
		}
	}
	p.StateDir, err = resolve("state directory", [][2]string{{"LLMKEY_STATE_DIR", ""}, {"XDG_STATE_HOME", "llmkey"}}, ".local", "state", "llmkey")
	if err != nil {
		return p, err
	}
	// Not a guessable name in a shared temp dir, which another user
	// could create first and answer on: a directory in our own home,
	// apart from the state dir (either may go missing on its own).
	p.RuntimeDir, err = resolve("runtime directory", [][2]string{{"LLMKEY_RUNTIME_DIR", ""}, {"XDG_RUNTIME_DIR", "llmkey"},
		{"XDG_CACHE_HOME", "llmkey run"}}, ".cache", "llmkey", "run")
	if err != nil {
		return p, err
	}
	for _, s := range []*string{&p.Keyfile, &p.StateDir, &p.RuntimeDir} {
		abs, err := filepath.Abs(*s)
		if err != nil {
			return p, fmt.Errorf("resolve %s: %w", *s, err)
		}
		*s = abs
	}
	return p, nil
}

// EnsurePrivateDir creates dir (and parents) so that dir itself is 0700.
// An existing directory is used as it is: like git credential-cache we
// never chmod a directory after the fact. It is refused when another
// user could swap it or what it holds: dir, or a directory on the way to
// it, owned by someone else (a directory on the way may be root's) or
// writable by others, or a symlink on the way that someone else made.
// Nothing is created inside a directory that fails those checks, and no
// symlink is followed before its own directory has passed them.
func EnsurePrivateDir(dir string) error {
	return ensureDir(dir, dirRule{closed: 0o022, problem: "may be written by other users"})
}

// EnsureRuntimeDir is EnsurePrivateDir for the runtime dir, which must
// also be closed to everyone else (mode 0700) and not a symlink itself:
// the CLI trusts nothing else to hold the daemon's socket.
func EnsureRuntimeDir(dir string) error {
	return ensureDir(dir, dirRule{closed: 0o077, problem: "may be entered by other users", noLink: true})
}

// dirRule is what the last directory of a path must be, besides ours.
type dirRule struct {
	closed  fs.FileMode // permission bits no one else may have
	problem string      // what having them means
	noLink  bool        // the directory itself may not be a symlink
}

// UnsafeDirError is a directory refused because another user could swap
// it, or what it holds: one of theirs, one they may write, a symlink they
// made. It is a *PathError too.
type UnsafeDirError struct{ PathError }

func (e *UnsafeDirError) Unwrap() error { return &e.PathError }

func unsafeDir(path, problem, hint string) error {
	return &UnsafeDirError{PathError{Path: path, Problem: problem, Hint: hint}}
}

// maxLinks bounds the symlinks followed on the way, as the kernel does.
const maxLinks = 40

// ensureDir walks dir from the root, one name at a time, as the kernel
// would resolve it, checking each directory before it looks inside, and
// creates the names missing (0700) in directories that passed.
func ensureDir(dir string, rule dirRule) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	cur, rest, links := "/", splitPath(abs), 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == ".." { // cur is free of symlinks: its parent is lexical
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := lstatOrMake(next)
		if err != nil {
			return err
		}
		last := len(rest) == 0
		if fi.Mode()&fs.ModeSymlink != 0 {
			if err := trustLink(next, fi, last && rule.noLink); err != nil {
				return err
			}
			if links++; links > maxLinks {
				return &PathError{Path: dir, Problem: "has too many symbolic links on the way", Hint: "point it at a real directory"}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("read link %s: %w", next, err)
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			rest = append(splitPath(target), rest...)
			continue
		}
		if err := trustDir(next, fi, last, rule); err != nil {
			return err
		}
		cur = next
	}
	return nil
}

// splitPath is a path's names, without empty ones and ".".
func splitPath(p string) []string {
	var out []string
	for _, n := range strings.Split(p, string(filepath.Separator)) {
		if n != "" && n != "." {
			out = append(out, n)
		}
	}
	return out
}

// lstatOrMake is what is at path, made a directory of ours (0700) when
// nothing is: its parent has passed trustDir already.
func lstatOrMake(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		fi, err = os.Lstat(path)
	}
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	return fi, nil
}

// trustLink refuses a symlink that someone else made: it sits in a
// directory that passed trustDir, so only its maker (or root) can have
// put it there or change it.
func trustLink(path string, fi fs.FileInfo, refuse bool) error {
	if refuse {
		return unsafeDir(path, "is a symbolic link", "make it a directory of yours (rm it; llmkey creates it), or set LLMKEY_RUNTIME_DIR to one")
	}
	if uid, ok := ownerUID(fi); ok && uid != os.Getuid() && uid != 0 {
		return unsafeDir(path, fmt.Sprintf("is a symbolic link made by uid %d, not by you (uid %d)", uid, os.Getuid()), hintElsewhere)
	}
	return nil
}

const hintElsewhere = "another user may have made it to catch your files: remove it, or use a directory you own (see LLMKEY_KEYFILE, LLMKEY_STATE_DIR, LLMKEY_RUNTIME_DIR)"

// trustDir checks a directory on the way (last: the directory itself).
// One on the way may be root's, and open to others when it is sticky
// (/tmp): there no one else can rename or remove what is ours.
func trustDir(path string, fi fs.FileInfo, last bool, rule dirRule) error {
	if !fi.IsDir() {
		return &PathError{Path: path, Problem: "is not a directory", Hint: fmt.Sprintf("move %s out of the way", path)}
	}
	uid, ok := ownerUID(fi)
	if ok && uid != os.Getuid() && (last || uid != 0) {
		return unsafeDir(path, fmt.Sprintf("is owned by uid %d, not by you (uid %d)", uid, os.Getuid()), hintElsewhere)
	}
	perm := fi.Mode().Perm()
	switch {
	case last && perm&rule.closed != 0:
		return unsafeDir(path, fmt.Sprintf("%s (mode %04o)", rule.problem, perm), "chmod 700 "+shellQuote(path))
	case !last && perm&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0:
		return unsafeDir(path, fmt.Sprintf("may be written by other users (mode %04o), who could swap what llmkey keeps in it", perm),
			"chmod go-w "+shellQuote(path)+", or set LLMKEY_STATE_DIR and LLMKEY_RUNTIME_DIR to directories only you can write")
	}
	return nil
}

// SocketPath is the control socket in the runtime directory. It is short
// on purpose: a UNIX socket path may not exceed 107 bytes.
func (p Paths) SocketPath() string { return filepath.Join(p.RuntimeDir, "sock") }

// LockPath is held by the running daemon for its whole life.
func (p Paths) LockPath() string { return filepath.Join(p.RuntimeDir, "daemon.lock") }

// StateLockPath is held by the daemon that writes the state dir.
func (p Paths) StateLockPath() string { return filepath.Join(p.StateDir, "daemon.lock") }

// SpawnLockPath serializes CLIs that want to start the daemon.
func (p Paths) SpawnLockPath() string { return filepath.Join(p.RuntimeDir, "spawn.lock") }

// LogPath is where a daemon started in the background writes its log.
func (p Paths) LogPath() string { return filepath.Join(p.StateDir, "daemon.log") }
