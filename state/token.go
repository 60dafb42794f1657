// SPDX-License-Identifier: MIT

package state

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenPrefix marks llmkey's local tokens, so a person who finds one knows
// it is not a provider key (and that it only works on this machine).
const TokenPrefix = "llmk-local-"

// ScopedPrefix marks the scoped tokens the daemon issues for a selection
// of keys (exec --key, --tag, --label).
const ScopedPrefix = "llmk-scoped-"

// IsToken reports whether s is one of llmkey's tokens, local or scoped:
// a credential for the proxy, never a provider's key.
func IsToken(s string) bool {
	return strings.HasPrefix(s, TokenPrefix) || strings.HasPrefix(s, ScopedPrefix)
}

// TokenFile is where the local token lives in the state directory.
func TokenFile(stateDir string) string { return filepath.Join(stateDir, "token") }

// LoadOrCreateToken returns the local token, creating it (0600, O_EXCL,
// so two daemons racing cannot end with two tokens) on first use.
func LoadOrCreateToken(stateDir string) (string, error) {
	path := TokenFile(stateDir)
	if tok, err := readToken(path); err == nil {
		return tok, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := EnsurePrivateDir(stateDir); err != nil {
		return "", err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make local token: %w", err)
	}
	tok := TokenPrefix + hex.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readToken(path)
	}
	if err != nil {
		return "", fmt.Errorf("create token file: %w", err)
	}
	_, werr := f.WriteString(tok + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("write token file: %w", err)
	}
	return tok, nil
}

func readToken(path string) (string, error) {
	data, err := readPrivate(path, tokenFile)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) < len(TokenPrefix)+32 {
		return "", &CorruptError{Path: path, Err: errors.New("it does not hold an llmkey token")}
	}
	return tok, nil
}
