// SPDX-License-Identifier: MIT

package daemon

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// From keyfile bytes to a loaded configuration: whatever validation lets
// through publishes without a panic, and every pool then answers a pick.
// Run it longer with
//
//	go test ./daemon -run XXX -fuzz FuzzKeyfileToConfig -fuzztime 5m
func FuzzKeyfileToConfig(f *testing.F) {
	for _, s := range []string{
		"[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"sk-aaaaaaaaaaaaaaaaaaaaaaaa\"\nweight = 3\n",
		"[daemon]\nstrategy = \"weighted\"\n\n[[key]]\nprovider = \"openai\"\nname = \"a\"\nsecret = \"s\"\nweight = 1000000\n\n[[key]]\nprovider = \"openai\"\nname = \"b\"\nsecret = \"t\"\nweight = 1000000\n",
		"[[key]]\nprovider = \"groq\"\nname = \"a\"\nsecret = \"s\"\nrpm = 100000\ntpm = 5\nrpd = 1\ntpd = 1\nmax_concurrent = 1\nmodels = [\"x*\"]\n",
		"[provider.local]\nkind = \"gemini\"\nbase_url = \"http://127.0.0.1:1\"\nstrategy = \"least-used\"\n\n[[key]]\nprovider = \"local\"\nname = \"a\"\nsecret = \"s\"\n",
		"[daemon]\nprobe_interval = \"168h\"\nmax_wait = \"0s\"\nmax_attempts = 100\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		cfg, err := state.Parse("k.toml", []byte(data))
		if err != nil {
			return
		}
		d := newDaemon(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, &fakeClock{now: time.Unix(1_800_000_000, 0)})
		d.mu.Lock()
		err = d.publish(cfg, nil)
		d.mu.Unlock()
		if err != nil {
			t.Fatalf("a valid keyfile did not load: %v\n%s", err, data)
		}
		for _, up := range d.snap.Load().Providers {
			if l, den := up.Pool.Take(rotate.Ask{Model: "x"}); den == nil {
				l.Cancel()
			}
			up.Pool.View()
		}
		d.status()
	})
}
