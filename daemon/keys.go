// SPDX-License-Identifier: MIT

package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/proxy"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// keyOf is the key a control request's path names, or nil after
// answering 404.
func (d *Daemon) keyOf(w http.ResponseWriter, r *http.Request) (*proxy.Upstream, *proxy.Key) {
	prov, name := r.PathValue("provider"), r.PathValue("name")
	up, ok := d.snap.Load().Providers[prov]
	if !ok || up.Pool == nil || !slices.Contains(up.Order, name) {
		writeJSON(w, http.StatusNotFound, control.APIError{Msg: fmt.Sprintf("no key %s/%s", prov, name), Hint: "'llmkey list' shows the keys"})
		return nil, nil
	}
	k := up.Keys[name]
	return up, &k
}

// serveKeyChecked acts on what a check made outside the proxy (llmkey
// test) found of a key, as on the same answer to a request: the rotation
// learns it at once, not at the key's next request. A check of another
// secret than the one the key has now (changed since) is refused.
func (d *Daemon) serveKeyChecked(w http.ResponseWriter, r *http.Request) {
	up, k := d.keyOf(w, r)
	if k == nil {
		return
	}
	var chk control.KeyCheck
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&chk); err != nil {
		writeJSON(w, http.StatusBadRequest, control.APIError{Msg: "bad key check: " + err.Error(), Hint: `send {"fingerprint": ..., "class": ...}`})
		return
	}
	class, ok := rotate.ParseClass(chk.Class)
	if !ok {
		writeJSON(w, http.StatusBadRequest, control.APIError{Msg: fmt.Sprintf("bad key check: no class %q", chk.Class), Hint: "success, rate-limited, quota or invalid-key"})
		return
	}
	if k.Unavailable != "" || chk.Fingerprint != k.Fingerprint {
		writeJSON(w, http.StatusConflict, control.APIError{Msg: fmt.Sprintf("%s/%s has another secret now than the one checked; nothing changed", up.Name, k.Name),
			Hint: "check it again: llmkey test " + up.Name + "/" + k.Name})
		return
	}
	o := rotate.Outcome{Class: class, Status: chk.Status, Reason: chk.Reason, Wait: time.Duration(chk.Wait * float64(time.Second))}
	if o.Wait > 0 {
		o.WaitSource = "llmkey test"
	}
	if chk.Until != nil {
		o.Until = *chk.Until
	}
	up.Pool.Checked(k.Name, o)
	d.log.Info("key checked by hand", "provider", up.Name, "key", k.Name, "class", class.String())
	writeJSON(w, http.StatusOK, d.keyStatusOf(up, k.Name))
}

// keyStatusOf is the named key's state now.
func (d *Daemon) keyStatusOf(up *proxy.Upstream, name string) control.KeyStatus {
	for _, ks := range providerStatus(up, d.clock.Now(), nil).Keys {
		if ks.Name == name {
			return ks
		}
	}
	return control.KeyStatus{Provider: up.Name, Name: name}
}

// A rename (llmkey rename) is announced to the daemon before the keyfile
// changes: the CLI announces it, edits the keyfile, then reloads. The
// load that serves the keyfile with the new name in place of the old one
// carries the key over (applyRenames): what rotation learned of it, its
// hand-made disable, its conversations, its usage rows of every day, and
// the scoped tokens that name it. An announcement that no load fulfils
// within renameWait (the edit failed, or another was made) is dropped.
type pendingRename struct {
	provider, from, to string
	at                 time.Time
}

const renameWait = time.Minute

// serveKeyRename takes the announcement of a rename of the path's key to
// the body's {"to": NAME}.
func (d *Daemon) serveKeyRename(w http.ResponseWriter, r *http.Request) {
	prov, name := r.PathValue("provider"), r.PathValue("name")
	var req control.RenameRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || !state.ValidName(req.To) || req.To == name {
		writeJSON(w, http.StatusBadRequest, control.APIError{Msg: "bad rename: the body must be {\"to\": NAME}, a new name of letters, digits, '.', '_' or '-'",
			Hint: "llmkey rename PROVIDER/NAME NEW does it"})
		return
	}
	d.mu.Lock()
	d.renames = append(d.renames, pendingRename{provider: prov, from: name, to: req.To, at: d.clock.Now()})
	d.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]string{"renaming": prov + "/" + name, "to": prov + "/" + req.To})
}

// applyRenames carries over the keys that cfg, about to be served, names
// anew: each announced rename whose old name cfg no longer has, and whose
// new name it has. The caller holds d.mu.
func (d *Daemon) applyRenames(cfg *state.Config) {
	if len(d.renames) == 0 {
		return
	}
	now, old := d.clock.Now(), d.snap.Load()
	keep := d.renames[:0]
	for _, rn := range d.renames {
		switch {
		case now.Sub(rn.at) > renameWait:
		case cfg.Find(rn.provider, rn.from) >= 0 || cfg.Find(rn.provider, rn.to) < 0:
			keep = append(keep, rn) // not in this load
		default:
			d.carryOver(old, rn)
		}
	}
	d.renames = keep
}

// carryOver gives rn's key its new name in everything the daemon keeps of
// it. The caller holds d.mu.
func (d *Daemon) carryOver(old *proxy.Snapshot, rn pendingRename) {
	fp := ""
	if old != nil && old.Providers[rn.provider] != nil {
		fp = old.Providers[rn.provider].Keys[rn.from].Fingerprint
	}
	if p := d.pools[rn.provider]; p != nil {
		p.Rename(rn.from, rn.to)
	}
	d.tokens.renameKey(rn.provider+"/"+rn.from, rn.provider+"/"+rn.to)
	d.overridesDirty.Store(true) // the keeper writes disabled.json anew
	d.usage.rename(rn.provider, rn.from, rn.to, fp)
	d.log.Info("key renamed; its state, usage and scoped tokens follow it", "provider", rn.provider, "from", rn.from, "to", rn.to)
}

// renameKey makes the scoped tokens that name the key from name to. A
// token's record never changes once issued (the proxy reads its grant
// without the lock): a renamed one is a new record.
func (s *tokenStore) renameKey(from, to string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, t := range s.byHash {
		if !slices.Contains(t.Keys, from) {
			continue
		}
		nt := *t
		nt.Keys = slices.Clone(t.Keys)
		for i, ref := range nt.Keys {
			if ref == from {
				nt.Keys[i] = to
			}
		}
		nt.build()
		s.byHash[h] = &nt
		s.gen++
	}
}

// toldProblems are the problems of single keys that exec and env have
// said, by key: each is said once, and again only once it changes (or
// went away and came back). A key that waits for its owner (invalid, out
// of quota, its secret unread) while its provider has others serving
// does not keep a tool from being served: on every exec it would be
// noise. What does keep one from being served (no usable key for a
// provider, a rejected keyfile) is said every time.
type toldProblems struct {
	mu   sync.Mutex
	said map[string]string // PROVIDER/NAME: the problem said
}

// untold is st's problems less those of single keys said before.
func (t *toldProblems) untold(st control.Status) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := map[string]string{}
	skip := map[string]bool{}
	for _, ps := range st.Providers {
		for _, k := range ps.Keys {
			if k.Action == "" {
				continue
			}
			p := KeyProblem(k)
			ref := k.Provider + "/" + k.Name
			now[ref] = sameWords(p)
			skip[p] = t.said[ref] == now[ref]
		}
	}
	t.said = now
	out := []string{}
	for _, p := range st.Problems {
		if !skip[p] {
			out = append(out, p)
		}
	}
	return out
}

// sameWords is s with its numbers left out: a wait counting down does
// not make a problem another one.
func sameWords(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, s)
}
