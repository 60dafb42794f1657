// SPDX-License-Identifier: MIT

package rotate

import (
	"strings"
	"testing"
	"time"
)

func TestAllCoolingSaysWhen(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b")...)
	pickDone(t, p, "m", Outcome{Class: RateLimited, Status: 429, Wait: 60 * time.Second})
	clk.advance(5 * time.Second)
	pickDone(t, p, "m", Outcome{Class: RateLimited, Status: 429, Wait: 60 * time.Second})
	_, d := p.Acquire("m", nil)
	if d == nil || d.Code != "all-keys-cooling" || d.Until.Sub(clk.now) != 55*time.Second {
		t.Fatalf("denial %+v", d)
	}
	if !strings.Contains(d.Detail, "openai/a cooling 55s") || !strings.Contains(d.Detail, "openai/b cooling 1m0s") {
		t.Errorf("detail: %s", d.Detail)
	}
}
