package rotate

import (
	"testing"
	"time"
)

// Every class that SetsAside says cools or parks a key does so in Done.
func TestSetsAsideIsWhatDoneDoes(t *testing.T) {
	for _, c := range Classes() {
		clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
		p := NewPool("openai", clk)
		p.Update(Policy{Strategy: RoundRobin}, []KeySpec{{Name: "a"}})
		l, den := p.Acquire("", nil)
		if den != nil {
			t.Fatal(den.Detail)
		}
		l.Done(Outcome{Class: c, Reason: "x"}, 0)
		views, _, _ := p.View()
		want := map[string]KeyState{"cools": Cooling, "parks": Parked, "": Ready}[c.SetsAside()]
		if got := views[0].State; got != want {
			t.Errorf("%s: key is %s, SetsAside says %q", c, got, c.SetsAside())
		}
	}
}
