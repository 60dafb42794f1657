// SPDX-License-Identifier: MIT

package daemon

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
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
//
// A token lives until the process it was issued to has exited (exec's:
// exec becomes its command, under the same pid), until its expiry, or
// until revoked, and is refused from then on. The daemon removes such
// tokens when it issues one, when it starts and on "token prune": never
// on a timer, so that it sleeps at rest, and the file holds about as
// many tokens as are in use.
type tokenStore struct {
	mu     sync.Mutex
	path   string
	byHash map[string]*issued
	// gen counts the changes to byHash, saved is the one on disk. One
	// write at a time (writing), each of all there is when it starts, so
	// that an older list never lands after a newer one.
	gen, saved uint64
	writing    sync.Mutex
}

type issued struct {
	ID      string     `json:"id"`
	Hash    string     `json:"hash"`
	Label   string     `json:"label,omitempty"`
	Keys    []string   `json:"keys"` // PROVIDER/NAME
	Tags    []string   `json:"tags,omitempty"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	// PID and Started name the process the token ends with: with its
	// start, a pid the system gave to a new process is not taken for it.
	PID     int    `json:"pid,omitempty"`
	Started string `json:"pid_started,omitempty"`
	// Revoked is set, under the store's lock, by "token revoke".
	Revoked *time.Time `json:"revoked,omitempty"`
	grant   *proxy.Grant
}

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

// running reports whether the process the token ends with still runs;
// true for a token that ends with none. Where the system cannot tell,
// the token keeps working.
func (t *issued) running() bool {
	if t.PID == 0 {
		return true
	}
	started, err := procStart(t.PID)
	if errors.Is(err, errProcGone) {
		return false
	}
	return err != nil || started == t.Started
}

// loadTokens reads tokens.json and drops the tokens that ended while the
// daemon was stopped; a damaged file is set aside (its tokens stop
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
		if t.PID == 0 && t.Expires == nil {
			// Issued before tokens had an end: the one env's have.
			e := t.Created.Add(control.DefaultTokenTTL)
			t.Expires = &e
		}
		t.build()
		s.byHash[t.Hash] = t
	}
	s.mu.Lock()
	gone := s.removeDead(d.clock.Now(), false)
	s.mu.Unlock()
	if len(gone) > 0 {
		d.log.Info("removed the scoped tokens that ended, expired or were revoked", "count", len(gone))
		d.persistTokens(true)
	}
}

// lookup is the proxy's Grants: a live token's grant. The process check
// runs outside the lock, on fields that never change.
func (s *tokenStore) lookup(tok string) (*proxy.Grant, bool) {
	if !strings.HasPrefix(tok, state.ScopedPrefix) {
		return nil, false
	}
	s.mu.Lock()
	t := s.byHash[tokenHash(tok)]
	revoked := t != nil && t.Revoked != nil
	s.mu.Unlock()
	if t == nil || revoked || !t.running() {
		return nil, false
	}
	return t.grant, true
}

// save writes every token's record as they are when it starts; durable
// waits for the disk (a revoke must outlive a power cut), else the page
// cache has it, which outlives the daemon: a power cut ends the
// processes that hold the tokens just issued anyway.
func (s *tokenStore) save(durable bool) error {
	s.writing.Lock()
	defer s.writing.Unlock()
	s.mu.Lock()
	gen := s.gen
	all := make([]*issued, 0, len(s.byHash))
	for _, t := range s.byHash {
		all = append(all, t)
	}
	slices.SortFunc(all, func(a, b *issued) int { return a.Created.Compare(b.Created) })
	b, _ := json.MarshalIndent(all, "", "  ")
	s.mu.Unlock()
	if err := state.EnsurePrivateDir(filepath.Dir(s.path)); err != nil {
		return err
	}
	write := writeCached
	if durable {
		write = state.WriteAtomic
	}
	if err := write(s.path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	s.mu.Lock()
	s.saved = max(s.saved, gen)
	s.mu.Unlock()
	return nil
}

// writeCached replaces path with data as state.WriteAtomic does (a
// reader sees the old file or the new one), without waiting for the disk.
func writeCached(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	err = errors.Join(werr, f.Chmod(perm), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// dirty reports whether a change is not on disk yet.
func (s *tokenStore) dirty() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen != s.saved
}

// unsaved reports whether tokens.json needs writing: a change is not on
// disk yet, or the file is gone while there are tokens.
func (s *tokenStore) unsaved() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	n, dirty := len(s.byHash), s.gen != s.saved
	s.mu.Unlock()
	return dirty || (n > 0 && !exists(s.path))
}

// persistTokens writes the tokens. When it cannot, the change holds in
// memory, status says at once that the state is not persisted, and the
// keeper writes it with the rest of the state once the state dir takes
// writes again.
func (d *Daemon) persistTokens(durable bool) error {
	err := d.tokens.save(durable)
	if err == nil {
		return nil
	}
	d.log.Warn("could not save the scoped tokens; the change holds in memory and is written once the state dir takes writes again", "err", err)
	p := &d.persist
	p.mu.Lock()
	if p.failingSince.IsZero() {
		p.failingSince = d.clock.Now()
	}
	p.lastErr = err.Error()
	p.mu.Unlock()
	select {
	case d.usage.changed <- struct{}{}: // wake the keeper
	default:
	}
	return err
}

// rootCause is the system's word for why err happened ("read-only file
// system"), without the paths each layer adds.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// removeDead drops the tokens that are not live at now (dry: only says
// which it would drop), oldest first. The caller holds s.mu.
func (s *tokenStore) removeDead(now time.Time, dry bool) []control.TokenInfo {
	gone := []control.TokenInfo{}
	for h, t := range s.byHash {
		if in := t.info(now); in.State != control.TokenLive {
			gone = append(gone, in)
			if !dry {
				delete(s.byHash, h)
			}
		}
	}
	if len(gone) > 0 && !dry {
		s.gen++
	}
	slices.SortFunc(gone, func(a, b control.TokenInfo) int { return a.Created.Compare(b.Created) })
	return gone
}

// selectKeys resolves req's selection against the keys served now.
func (d *Daemon) selectKeys(req control.TokenRequest) ([]string, error) {
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
	return keys, nil
}

// issue makes a scoped token for req's selection; caller is the pid of
// the process that asked (0: unknown), for EndWithCaller. It also drops
// the tokens no longer live, so that issuing costs what the tokens in use
// cost, whatever number were issued before.
func (d *Daemon) issue(req control.TokenRequest, caller int) (*control.Token, error) {
	keys, err := d.selectKeys(req)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 24)
	rand.Read(b)
	tok := state.ScopedPrefix + hex.EncodeToString(b)
	now := d.clock.Now().UTC()
	t := &issued{Hash: tokenHash(tok), Label: req.Label, Keys: keys, Tags: req.Tags, Created: now}
	t.ID = t.Hash[:12]
	if err := d.setLifetime(t, req, caller); err != nil {
		return nil, err
	}
	t.build()
	s := d.tokens
	s.mu.Lock()
	gone := s.removeDead(now, false)
	s.byHash[t.Hash] = t
	s.gen++
	in := t.info(now) // under the lock: a revoke may come at once
	s.mu.Unlock()
	d.persistTokens(false)
	d.log.Info("scoped token issued", "id", t.ID, "label", t.Label, "keys", strings.Join(keys, ","), "pid", t.PID, "removed_dead", len(gone))
	return &control.Token{Token: tok, TokenInfo: in}, nil
}

// setLifetime gives t its end: req's TTL; else the process that asked,
// when it asked for that and the system says when it started; else
// DefaultTokenTTL.
func (d *Daemon) setLifetime(t *issued, req control.TokenRequest, caller int) error {
	ttl := control.DefaultTokenTTL
	switch {
	case req.TTL != "":
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			return &control.APIError{Msg: fmt.Sprintf("bad expiry %q", req.TTL), Hint: `use e.g. "8h"`}
		}
	case req.EndWithCaller:
		err := errors.New("the system did not say which process asked")
		if caller > 0 {
			var started string
			if started, err = procStart(caller); err == nil {
				t.PID, t.Started = caller, started
				return nil
			}
		}
		d.log.Info("cannot tell when the process that asked for a scoped token started; the token ends at the default expiry instead",
			"pid", caller, "err", err, "expires_in", ttl)
	}
	e := t.Created.Add(ttl)
	t.Expires = &e
	return nil
}

// info is t as the control API shows it. The caller holds the store's
// lock (Revoked).
func (t *issued) info(now time.Time) control.TokenInfo {
	in := control.TokenInfo{ID: t.ID, Label: t.Label, Keys: append([]string{}, t.Keys...), Tags: t.Tags, Created: t.Created,
		Expires: t.Expires, PID: t.PID, Revoked: t.Revoked, State: control.TokenLive}
	in.Expired = t.Expires != nil && !now.Before(*t.Expires)
	switch {
	case t.Revoked != nil:
		in.State = control.TokenRevoked
	case in.Expired:
		in.State = control.TokenExpired
	case !t.running():
		in.State = control.TokenEnded
	}
	return in
}

// tokenList lists the scoped tokens, oldest first, with their states.
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

// revoke ends the token whose id starts with id (six characters at
// least, naming one token). It takes effect at once; the change says
// whether it is on disk yet.
func (d *Daemon) revoke(id string) (*control.TokenChange, error) {
	s := d.tokens
	now := d.clock.Now().UTC()
	s.mu.Lock()
	var match []*issued
	for _, t := range s.byHash {
		if len(id) >= 6 && strings.HasPrefix(t.ID, id) {
			match = append(match, t)
		}
	}
	if len(match) != 1 {
		s.mu.Unlock()
		if len(match) > 1 {
			return nil, &control.APIError{Msg: fmt.Sprintf("%d scoped tokens have ids that start with %s", len(match), id), Hint: "give more of the id ('llmkey token list' shows them)"}
		}
		return nil, &control.APIError{Msg: "no scoped token " + id, Hint: "'llmkey token list' shows them (six characters of an id are enough)"}
	}
	t := match[0]
	if t.Revoked == nil {
		t.Revoked = &now
		s.gen++
	}
	in := t.info(now)
	s.mu.Unlock()
	d.log.Info("scoped token revoked", "id", t.ID, "label", t.Label)
	return d.tokenChange([]control.TokenInfo{in}, true), nil
}

// pruneTokens removes the tokens that are no longer live (dry: only says
// which it would remove).
func (d *Daemon) pruneTokens(dry bool) *control.TokenChange {
	s := d.tokens
	s.mu.Lock()
	gone := s.removeDead(d.clock.Now(), dry)
	s.mu.Unlock()
	if !dry && len(gone) > 0 {
		d.log.Info("pruned the scoped tokens that ended, expired or were revoked", "count", len(gone))
	}
	return d.tokenChange(gone, !dry && (len(gone) > 0 || s.dirty()))
}

// tokenChange reports a change to the tokens, writing them first when
// write is set.
func (d *Daemon) tokenChange(list []control.TokenInfo, write bool) *control.TokenChange {
	ch := &control.TokenChange{Tokens: list, Persisted: !d.tokens.dirty(), Path: d.tokens.path}
	if write {
		err := d.persistTokens(true)
		ch.Persisted = err == nil
		if err != nil {
			ch.Error = rootCause(err).Error()
		}
	}
	return ch
}

// serveTokens adds the control API's scoped-token endpoints to mux.
func (d *Daemon) serveTokens(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		var req control.TokenRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, control.APIError{Msg: "bad token request: " + err.Error()})
			return
		}
		t, err := d.issue(req, callerPID(r))
		var ae *control.APIError
		if errors.As(err, &ae) {
			writeJSON(w, http.StatusBadRequest, ae)
			return
		}
		writeJSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("GET /v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.tokenList())
	})
	mux.HandleFunc("POST /v1/tokens/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		ch, err := d.revoke(r.PathValue("id"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, http.StatusOK, ch)
	})
	mux.HandleFunc("POST /v1/tokens/prune", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.pruneTokens(r.URL.Query().Get("dry_run") != ""))
	})
}
