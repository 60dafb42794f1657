// SPDX-License-Identifier: MIT

// Package secrets reads a key's secret where the keyfile says it lives:
// in the keyfile itself, in the OS keychain (Secret Service on Linux,
// spoken to over D-Bus directly; Keychain on macOS: service "llmkey",
// account PROVIDER/NAME), or from a command's output (secret_cmd: op read
// ..., pass show ...), run with a timeout, in a process group of its own,
// its output capped. What it reads is kept in memory only, by whoever
// asked, and its errors show no secret: a failing command's standard
// error is shown as a short excerpt with whatever looks like a secret
// masked.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/llmkey/llmkey/state"
)

// Service is the keychain service llmkey's secrets are under.
const Service = "llmkey"

// CommandTimeout bounds a secret_cmd, and a read of the keychain.
const CommandTimeout = 10 * time.Second

// Read is k's secret. known are secrets that must not appear in its error
// (the keyfile's others): a failing command may print anything.
func Read(ctx context.Context, k state.Key, known ...string) (string, error) {
	switch {
	case k.Keychain:
		s, err := keychainGet(ctx, k.Ref())
		var locked *LockedError
		switch {
		case errors.Is(err, keyring.ErrNotFound):
			return "", fmt.Errorf("the keychain has no secret for service %q, account %q: add it with 'llmkey set %s --secret'", Service, k.Ref(), k.Ref())
		case errors.As(err, &locked):
			return "", err
		case err != nil:
			return "", fmt.Errorf("the keychain could not be read: %w", err)
		}
		return strings.TrimSpace(s), nil
	case len(k.SecretCmd) > 0:
		return readCommand(ctx, k.SecretCmd, known)
	}
	return k.Secret, nil
}

// LockedError says the keychain is locked, and whether llmkey asked to
// unlock it.
type LockedError struct{ Why string }

func (e *LockedError) Error() string { return "the keychain is locked: " + e.Why }

// NoBusError is a keychain with no D-Bus session bus to reach it by: a
// process started outside the desktop's session (over ssh, in tmux or a
// container, under WSL) has none, though the keychain may be unlocked in
// the desktop's. Address is the bus it was told of, if any.
type NoBusError struct {
	Address string
	Err     error
}

func (e *NoBusError) Error() string {
	where := "DBUS_SESSION_BUS_ADDRESS unset"
	if e.Address != "" {
		where = "none at " + e.Address
		if e.Err != nil {
			where += ": " + e.Err.Error()
		}
	}
	return "no D-Bus session bus (" + where + "; ssh/tmux/container?)"
}

// HintText is for the CLI, which has no session bus where it runs.
func (e *NoBusError) HintText() string {
	return "run this in a terminal of the desktop session, or keep the secret in the keyfile or a secret_cmd"
}

// DaemonFix is what to do when the daemon has no session bus.
const DaemonFix = "restart the daemon from a desktop session, or use secret_cmd"

func (e *NoBusError) Unwrap() error { return e.Err }

// Store puts secret in the keychain for k.
func Store(k state.Key, secret string) error {
	if err := needBus(); err != nil {
		return fmt.Errorf("store the secret in the keychain: %w", err)
	}
	if err := keyring.Set(Service, k.Ref(), secret); err != nil {
		return fmt.Errorf("store the secret in the keychain: %w", err)
	}
	return nil
}

// Delete removes k's secret from the keychain; a missing one is no error.
func Delete(k state.Key) error {
	if err := needBus(); err != nil {
		return err
	}
	if err := keyring.Delete(Service, k.Ref()); err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return err
	}
	return nil
}
