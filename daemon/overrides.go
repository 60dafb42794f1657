// SPDX-License-Identifier: MIT

package daemon

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/llmkey/llmkey/state"
)

type override struct {
	// Until is when a "disable --for" ends; absent: until "enable".
	Until *time.Time `json:"until,omitempty"`
}

// overridesPath keeps the keys disabled by hand across restarts.
func (d *Daemon) overridesPath() string { return state.DisabledFile(d.opts.Paths.StateDir) }

// saveOverrides writes the keys disabled by hand. On a failure the
// override holds in memory and the keeper writes it once it can.
func (d *Daemon) saveOverrides() error {
	d.mu.Lock()
	all := map[string]override{}
	for name, rp := range d.pools {
		for key, until := range rp.Disabled() {
			o := override{}
			if !until.IsZero() {
				u := until
				o.Until = &u
			}
			all[name+"/"+key] = o
		}
	}
	d.mu.Unlock()
	b, _ := json.MarshalIndent(all, "", "  ")
	if err := state.EnsurePrivateDir(d.opts.Paths.StateDir); err != nil {
		return err
	}
	return state.WriteAtomic(d.overridesPath(), append(b, '\n'), 0o600)
}

// overridesMissing reports whether disabled.json needs writing: a write
// failed, or keys are disabled by hand but the file is gone.
func (d *Daemon) overridesMissing() bool {
	if d.overridesDirty.Load() {
		return true
	}
	if exists(d.overridesPath()) {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, rp := range d.pools {
		if len(rp.Disabled()) > 0 {
			return true
		}
	}
	return false
}

// loadOverrides re-applies the keys disabled by hand before the restart.
func (d *Daemon) loadOverrides() {
	b, err := os.ReadFile(d.overridesPath())
	if err != nil {
		return
	}
	var all map[string]override
	if err := json.Unmarshal(b, &all); err != nil {
		d.setAside(filepath.Base(d.overridesPath()), d.overridesPath(), err, "keys disabled by hand are enabled again; disable them again if needed")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ref := range slices.Sorted(maps.Keys(all)) {
		prov, name, _ := strings.Cut(ref, "/")
		rp := d.pools[prov]
		if rp == nil {
			continue
		}
		var until time.Time
		if u := all[ref].Until; u != nil {
			if !u.After(d.clock.Now()) {
				continue
			}
			until = *u
		}
		if rp.Disable(name, until) {
			d.log.Info("key disabled by hand before the restart", "provider", prov, "key", name)
		}
	}
}
