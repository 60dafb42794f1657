// SPDX-License-Identifier: MIT

package daemon

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/proxy"
	"github.com/llmkey/llmkey/state"
)

// Scoped tokens are the credentials the daemon issues for a selection of
// keys (exec --key, --tag) and a label: the proxy serves one only with
// its keys, and counts its requests under its label. They are kept in
// tokens.json in the state dir by their hash, never as themselves: a
// tool keeps its token across daemon restarts, and the file is no
// credential.
type tokenStore struct {
	mu     sync.Mutex
	path   string
	byHash map[string]*issued
}

type issued struct {
	ID      string     `json:"id"`
	Hash    string     `json:"hash"`
	Label   string     `json:"label,omitempty"`
	Keys    []string   `json:"keys"` // PROVIDER/NAME
	Tags    []string   `json:"tags,omitempty"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	grant   *proxy.Grant
}

// ScopedPrefix marks a scoped token.
const ScopedPrefix = "llmk-scoped-"

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func (t *issued) build() {
	g := &proxy.Grant{ID: t.ID, Label: t.Label, Only: map[string]map[string]bool{}}
	for _, ref := range t.Keys {
		prov, name, _ := strings.Cut(ref, "/")
		if g.Only[prov] == nil {
			g.Only[prov] = map[string]bool{}
		}
		g.Only[prov][name] = true
	}
	if t.Expires != nil {
		g.Expires = *t.Expires
	}
	t.grant = g
}

// load reads tokens.json; a damaged one is set aside (its tokens stop
// working, and the tools need new ones).
func (d *Daemon) loadTokens() {
	s := &tokenStore{path: state.ScopedTokensFile(d.opts.Paths.StateDir), byHash: map[string]*issued{}}
	d.tokens = s
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var all []*issued
	if err == nil {
		err = json.Unmarshal(b, &all)
	}
	if err != nil {
		d.setAside("scoped tokens file", s.path, err, "the scoped tokens in it no longer work; run the tools under 'llmkey exec' again")
		return
	}
	for _, t := range all {
		t.build()
		s.byHash[t.Hash] = t
	}
}

// lookup is the proxy's Grants.
func (s *tokenStore) lookup(tok string) (*proxy.Grant, bool) {
	if !strings.HasPrefix(tok, ScopedPrefix) {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.byHash[tokenHash(tok)]
	if t == nil {
		return nil, false
	}
	return t.grant, true
}

// save writes every token's record. The caller holds s.mu.
func (s *tokenStore) save() error {
	all := make([]*issued, 0, len(s.byHash))
	for _, t := range s.byHash {
		all = append(all, t)
	}
	slices.SortFunc(all, func(a, b *issued) int { return a.Created.Compare(b.Created) })
	b, _ := json.MarshalIndent(all, "", "  ")
	if err := state.EnsurePrivateDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	return state.WriteAtomic(s.path, append(b, '\n'), 0o600)
}

// issue makes a scoped token for req's selection, resolved against the
// keys served now.
func (d *Daemon) issue(req control.TokenRequest) (*control.Token, error) {
	cfg := d.snap.Load().Config
	var keys []string
	for _, ref := range req.Keys {
		prov, name, _ := strings.Cut(ref, "/")
		if cfg.Find(prov, name) < 0 {
			return nil, &control.APIError{Msg: fmt.Sprintf("no key %s in %s", ref, cfg.Path), Hint: "'llmkey list' shows the keys"}
		}
		keys = append(keys, ref)
	}
	for _, tag := range req.Tags {
		found := false
		for _, k := range cfg.Keys {
			if slices.Contains(k.Tags, tag) {
				found = true
				if !slices.Contains(keys, k.Ref()) {
					keys = append(keys, k.Ref())
				}
			}
		}
		if !found {
			return nil, &control.APIError{Msg: fmt.Sprintf("no key has the tag %q", tag), Hint: `give keys tags = ["` + tag + `"] in the keyfile, or 'llmkey set PROVIDER/NAME --tag ` + tag + `'`}
		}
	}
	if len(req.Keys) == 0 && len(req.Tags) == 0 { // a label alone: every key
		for _, k := range cfg.Keys {
			keys = append(keys, k.Ref())
		}
	}
	b := make([]byte, 24)
	rand.Read(b)
	tok := ScopedPrefix + hex.EncodeToString(b)
	t := &issued{Hash: tokenHash(tok), Label: req.Label, Keys: keys, Tags: req.Tags, Created: d.clock.Now().UTC()}
	t.ID = t.Hash[:12]
	if req.TTL != "" {
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			return nil, &control.APIError{Msg: fmt.Sprintf("bad expiry %q", req.TTL), Hint: `use e.g. "8h"`}
		}
		e := t.Created.Add(ttl)
		t.Expires = &e
	}
	t.build()
	s := d.tokens
	s.mu.Lock()
	s.byHash[t.Hash] = t
	err := s.save()
	s.mu.Unlock()
	if err != nil {
		d.log.Warn("could not save the scoped tokens; the new one works until the daemon stops", "err", err)
	}
	d.log.Info("scoped token issued", "id", t.ID, "label", t.Label, "keys", strings.Join(keys, ","))
	return &control.Token{Token: tok, TokenInfo: t.info(d.clock.Now())}, nil
}

func (t *issued) info(now time.Time) control.TokenInfo {
	in := control.TokenInfo{ID: t.ID, Label: t.Label, Keys: append([]string{}, t.Keys...), Tags: t.Tags, Created: t.Created, Expires: t.Expires}
	in.Expired = t.Expires != nil && !now.Before(*t.Expires)
	return in
}

// tokenList lists the scoped tokens, oldest first.
func (d *Daemon) tokenList() []control.TokenInfo {
	s := d.tokens
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []control.TokenInfo{}
	for _, t := range s.byHash {
		out = append(out, t.info(d.clock.Now()))
	}
	slices.SortFunc(out, func(a, b control.TokenInfo) int { return a.Created.Compare(b.Created) })
	return out
}

// revoke ends the token of that id (or id prefix); it reports whether
// there was one.
func (d *Daemon) revoke(id string) bool {
	s := d.tokens
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, t := range s.byHash {
		if len(id) >= 6 && strings.HasPrefix(t.ID, id) {
			delete(s.byHash, h)
			if err := s.save(); err != nil {
				d.log.Warn("could not save the scoped tokens; the revoked one stays revoked until the daemon stops", "err", err)
			}
			d.log.Info("scoped token revoked", "id", t.ID, "label", t.Label)
			return true
		}
	}
	return false
}
