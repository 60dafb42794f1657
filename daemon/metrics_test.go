// SPDX-License-Identifier: MIT

package daemon

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llmkey/llmkey/daemon/wire"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// A model name from a client keys usage rows and metric labels: /metrics
// still gathers with one that was not valid UTF-8.
func TestMetricsGatherWithAnyModelName(t *testing.T) {
	m := wire.Inspect(state.KindOpenAI, "/chat/completions", []byte("{\"model\":\"gpt-\xff\xfe\"}")).Model
	d := testDaemon(t, "")
	d.usage.Add(d.clock.Now(), state.UsageKey{Provider: "openai", Key: "a", Model: m}, state.Counts{Requests: 1, Successes: 1})
	fams := gather(t, d)
	if len(fams["llmkey_requests_total"].GetMetric()) != 1 {
		t.Errorf("requests: %v", fams["llmkey_requests_total"])
	}
}

// gather reads /metrics back with the official parser.
func gather(t *testing.T, d *Daemon) map[string]*dto.MetricFamily {
	t.Helper()
	var b bytes.Buffer
	d.metrics.reg.WriteTo(&b)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses /metrics: %v\n%s", err, b.String())
	}
	return fams
}

// The cooldown metric's help puts each class where rotation puts its key:
// a 403 cools a key (for that model), it does not park it.
func TestCooldownHelpMatchesRotation(t *testing.T) {
	d := testDaemon(t, "")
	d.metrics.cooldowns.With("openai", "a", "forbidden").Inc()
	help := gather(t, d)["llmkey_cooldown_events_total"].GetHelp()
	cooled, parked, ok := strings.Cut(help, ") or parked (")
	if !ok {
		t.Fatalf("help %q does not say what is cooled and what parked", help)
	}
	for _, c := range rotate.Classes() {
		inCooled, inParked := strings.Contains(cooled, c.String()), strings.Contains(parked, c.String())
		switch c.SetsAside() {
		case rotate.Cooling:
			if !inCooled || inParked {
				t.Errorf("%s cools a key; help says: %s", c, help)
			}
		case rotate.Parked:
			if inCooled || !inParked {
				t.Errorf("%s parks a key; help says: %s", c, help)
			}
		}
	}
}

// The usual process and Go series are there, with plausible values, under
// the official client's names.
func TestProcessMetrics(t *testing.T) {
	d := testDaemon(t, "")
	fams := gather(t, d)
	want := []string{"go_goroutines", "go_threads", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
		"go_memstats_sys_bytes", "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_resident_memory_bytes")
	}
	for _, name := range want {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Errorf("no %s", name)
			continue
		}
		m := f.GetMetric()[0]
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		if v <= 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	if st := fams["process_start_time_seconds"].GetMetric()[0].GetGauge().GetValue(); math.Abs(st-float64(time.Now().Unix())) > 60 {
		t.Errorf("start time %v", st)
	}
}
