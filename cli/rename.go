// SPDX-License-Identifier: MIT

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/secrets"
	"github.com/llmkey/llmkey/state"
)

// RenameCommandInput is what "llmkey rename" was asked to do.
type RenameCommandInput struct {
	Paths          state.Paths
	Provider, Name string
	To             string
}

func ConfigureRenameCommand(app *ucli.App) {
	app.Commands = append(app.Commands, &ucli.Command{
		Name:      "rename",
		Usage:     "rename a key in place; its usage, state and keychain entry follow it",
		ArgsUsage: "PROVIDER/NAME NEW (or PROVIDER NAME NEW)",
		Description: "Changes the key's name line in the keyfile and nothing else. Its usage (every day's) and a disable go to " +
			"the new name, with the daemon running or not; with it running, so do what the daemon learned of the key (a " +
			"cooldown, parking, its conversations) and the scoped tokens that name it. A key kept in the keychain " +
			"(keychain = true) moves to the account PROVIDER/NEW.",
		BashComplete: completeKeyRefs,
		Action: func(c *ucli.Context) error {
			if err := wantArgs(c, 2, 3); err != nil {
				return err
			}
			ref, to := c.Args().First(), c.Args().Get(1)
			if c.NArg() == 3 {
				ref, to = ref+"/"+c.Args().Get(1), c.Args().Get(2)
			}
			provider, name, err := parseRef(ref)
			if err != nil {
				return err
			}
			p, err := resolvePaths(c)
			if err != nil {
				return err
			}
			return RenameCommand(c.Context, RenameCommandInput{Paths: p, Provider: provider, Name: name, To: to}, streams(c))
		},
	})
}

// RenameCommand renames the key in the keyfile and everywhere llmkey
// keeps something of it. A running daemon is told first, and carries the
// key over when it loads the edited keyfile; with none running, the state
// dir is edited under its lock, so that none starts meanwhile.
func RenameCommand(ctx context.Context, in RenameCommandInput, s Streams) error {
	ref, to := in.Provider+"/"+in.Name, in.Provider+"/"+in.To
	if !state.ValidName(in.To) {
		return usageError("a name is letters, digits, '.', '_' or '-', at most 64, starting with a letter or digit", "%q is not a key name", in.To)
	}
	cfg, err := state.Load(in.Paths.Keyfile)
	if err != nil {
		return err
	}
	i := cfg.Find(in.Provider, in.Name)
	if i < 0 {
		return cfg.KeyNotFound(in.Provider, in.Name)
	}
	if j := cfg.Find(in.Provider, in.To); j >= 0 {
		return &state.DuplicateError{Ref: to, Path: cfg.Path, Line: cfg.KeyLine(j)}
	}
	k := cfg.Keys[i]
	daemon, unlock, err := holdState(ctx, in)
	if err != nil {
		return err
	}
	defer unlock()
	if err := renameKeyfile(ctx, in, k); err != nil {
		return err
	}
	if daemon != nil {
		return reloadRenamed(ctx, daemon, in, s)
	}
	if err := state.RenameInStateDir(in.Paths.StateDir, in.Provider, in.Name, in.To); err != nil {
		return fail("its usage stays under "+ref+"; "+state.UsageFile(in.Paths.StateDir)+" and the files beside it hold it",
			"renamed %s to %s in the keyfile, but not its usage: %v", ref, to, err)
	}
	s.done("renamed %s to %s in %s; its usage follows it", ref, to, in.Paths.Keyfile)
	return nil
}

// holdState makes sure what the state dir holds of the key follows the
// rename: it announces the rename to the daemon that runs on this
// keyfile (returning its client), or, with none running, takes the
// state dir's lock until unlock, so that no daemon starts on it meanwhile.
func holdState(ctx context.Context, in RenameCommandInput) (*control.Client, func(), error) {
	c := control.NewClient(in.Paths)
	st, err := c.Status(ctx)
	switch {
	case err == nil && st.Keyfile != nil && !samePath(st.Keyfile.Path, in.Paths.Keyfile):
		return nil, nil, sameKeyfile(st, in.Paths)
	case err == nil:
		if err := c.AnnounceRename(ctx, in.Provider, in.Name, in.To); err != nil {
			return nil, nil, fmt.Errorf("tell the daemon of the rename: %w", err)
		}
		return c, func() {}, nil
	case !errors.Is(err, control.ErrNotRunning):
		return nil, nil, err
	}
	f, err := os.OpenFile(in.Paths.StateLockPath(), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, func() {}, nil // no state dir, or no daemon ever wrote it
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open the state dir's lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, nil, fail("stop that daemon (it has another runtime dir), or run the rename again in a moment if one is starting",
			"another llmkey daemon (pid %d) uses the state dir %s", control.LockHolder(in.Paths.StateLockPath()), in.Paths.StateDir)
	}
	return nil, func() { f.Close() }, nil
}

// renameKeyfile renames k in the keyfile, and moves its keychain entry
// when it has one: stored under the new account first, the old one
// removed once the keyfile names the new.
func renameKeyfile(ctx context.Context, in RenameCommandInput, k state.Key) error {
	renamed := k
	renamed.Name = in.To
	if k.Keychain {
		secret, err := secrets.Read(ctx, k)
		if err != nil {
			return &Error{Err: fmt.Errorf("read %s's secret to move it to %s in the keychain: %w", k.Ref(), renamed.Ref(), err),
				Hint: hintOr(err, "unlock the keychain (on Linux, a Secret Service such as gnome-keyring must run), then rename again"), Code: ExitFailure}
		}
		if err := secrets.Store(renamed, secret); err != nil {
			return &Error{Err: err, Hint: hintOr(err, "unlock the keychain, then rename again"), Code: ExitFailure}
		}
	}
	if _, err := state.RenameKey(in.Paths.Keyfile, in.Provider, in.Name, in.To); err != nil {
		if k.Keychain {
			secrets.Delete(renamed)
		}
		return err
	}
	if k.Keychain {
		secrets.Delete(k)
	}
	return nil
}

// reloadRenamed has the daemon load the renamed keyfile now (it would
// soon by itself), and says that the key's state and usage followed.
func reloadRenamed(ctx context.Context, c *control.Client, in RenameCommandInput, s Streams) error {
	ref, to := in.Provider+"/"+in.Name, in.Provider+"/"+in.To
	st, err := c.Reload(ctx)
	if err != nil {
		return fail("llmkey reload, then llmkey status", "renamed %s to %s in the keyfile; the daemon did not reload it: %v", ref, to, err)
	}
	if kf := st.Keyfile; kf != nil && kf.Error != "" {
		return &Error{Err: fmt.Errorf("renamed %s to %s, but the keyfile has another problem, so the daemon still serves the last good one: %s", ref, to, kf.Error),
			Hint: kf.Hint, Code: ExitKeyfile}
	}
	s.done("renamed %s to %s in %s; its usage and state follow it", ref, to, in.Paths.Keyfile)
	return nil
}
