package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/llmkey/llmkey/daemon/control"
	"github.com/llmkey/llmkey/daemon/proxy"
	"github.com/llmkey/llmkey/rotate"
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
