// SPDX-License-Identifier: MIT

//go:build !linux

package secrets

import (
	"context"
	"errors"
	"time"

	"github.com/zalando/go-keyring"
)

// keychainGet reads the keychain within CommandTimeout: a locked
// keychain asks the user to unlock it, and without an answer it would
// wait for ever.
func keychainGet(ctx context.Context, account string) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := keyring.Get(Service, account)
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(CommandTimeout):
		return "", errors.New("no answer within " + CommandTimeout.String() + " (locked, waiting for an unlock prompt?)")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// needBus: the macOS Keychain needs no session bus.
func needBus() error { return nil }
