package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	var p Paths
	home := getenv("HOME")
	needHome := func(what, override string) error {
		if home == "" {
			return fmt.Errorf("cannot find the %s: HOME is not set (set HOME or %s)", what, override)
		}
		return nil
	}

	switch {
	case keyfileFlag != "":
		p.Keyfile = keyfileFlag
	case getenv("LLMKEY_KEYFILE") != "":
		p.Keyfile = getenv("LLMKEY_KEYFILE")
	case getenv("XDG_CONFIG_HOME") != "":
		p.Keyfile = filepath.Join(getenv("XDG_CONFIG_HOME"), "llmkey", "keys.toml")
	default:
		if err := needHome("keyfile", "LLMKEY_KEYFILE"); err != nil {
			return p, err
		}
		p.Keyfile = filepath.Join(home, ".config", "llmkey", "keys.toml")
	}

	switch {
	case getenv("LLMKEY_STATE_DIR") != "":
		p.StateDir = getenv("LLMKEY_STATE_DIR")
	case getenv("XDG_STATE_HOME") != "":
		p.StateDir = filepath.Join(getenv("XDG_STATE_HOME"), "llmkey")
	default:
		if err := needHome("state directory", "LLMKEY_STATE_DIR"); err != nil {
			return p, err
		}
		p.StateDir = filepath.Join(home, ".local", "state", "llmkey")
	}

	switch {
	case getenv("LLMKEY_RUNTIME_DIR") != "":
		p.RuntimeDir = getenv("LLMKEY_RUNTIME_DIR")
	case getenv("XDG_RUNTIME_DIR") != "":
		p.RuntimeDir = filepath.Join(getenv("XDG_RUNTIME_DIR"), "llmkey")
	case getenv("XDG_CACHE_HOME") != "":
		p.RuntimeDir = filepath.Join(getenv("XDG_CACHE_HOME"), "llmkey", "run")
	default:
		// Not a guessable name in a shared temp dir, which another user
		// could create first and answer on: a directory in our own home,
		// apart from the state dir (either may go missing on its own).
		if err := needHome("runtime directory", "LLMKEY_RUNTIME_DIR"); err != nil {
			return p, err
		}
		p.RuntimeDir = filepath.Join(home, ".cache", "llmkey", "run")
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
// never chmod a directory after the fact, but we refuse one that another
// user owns, since whoever owns it can swap our files.
func EnsurePrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return &PathError{Path: dir, Problem: "is not a directory", Hint: fmt.Sprintf("move %s out of the way", dir)}
	}
	if uid, ok := ownerUID(fi); ok && uid != os.Getuid() {
		return &PathError{Path: dir, Problem: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", uid, os.Getuid()),
			Hint: "use a directory you own (see LLMKEY_KEYFILE, LLMKEY_STATE_DIR, LLMKEY_RUNTIME_DIR)"}
	}
	return nil
}

// EnsureRuntimeDir is EnsurePrivateDir for the runtime dir, which must
// also be closed to everyone else (mode 0700): the CLI trusts nothing
// else to hold the daemon's socket.
func EnsureRuntimeDir(dir string) error {
	if err := EnsurePrivateDir(dir); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return &PathError{Path: dir, Problem: fmt.Sprintf("may be entered by other users (mode %04o)", perm), Hint: "chmod 700 " + shellQuote(dir)}
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
