package daemon

import (
	"strings"
	"testing"

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
	if _, err := d.metrics.reg.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

// The cooldown metric's help puts each class where rotation puts its key:
// a 403 cools a key (for that model), it does not park it.
func TestCooldownHelpMatchesRotation(t *testing.T) {
	d := testDaemon(t, "")
	d.metrics.cooldowns.WithLabelValues("openai", "a", "forbidden").Inc()
	fams, err := d.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	help := ""
	for _, f := range fams {
		if f.GetName() == "llmkey_cooldown_events_total" {
			help = f.GetHelp()
		}
	}
	cooled, parked, ok := strings.Cut(help, ") or parked (")
	if !ok {
		t.Fatalf("help %q does not say what is cooled and what parked", help)
	}
	for _, c := range rotate.Classes() {
		inCooled, inParked := strings.Contains(cooled, c.String()), strings.Contains(parked, c.String())
		switch c.SetsAside() {
		case "cools":
			if !inCooled || inParked {
				t.Errorf("%s cools a key; help says: %s", c, help)
			}
		case "parks":
			if inCooled || !inParked {
				t.Errorf("%s parks a key; help says: %s", c, help)
			}
		}
	}
}
