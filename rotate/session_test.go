// SPDX-License-Identifier: MIT

package rotate

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// take acquires for a and reports o at once; it returns the lease.
func take(t *testing.T, p *Pool, a Ask, o Outcome) Lease {
	t.Helper()
	l, d := p.Take(a)
	if d != nil {
		t.Fatalf("no key for %+v: %s %s", a, d.Code, d.Detail)
	}
	l.Done(o, Spend{})
	return l
}

var rateLimited = Outcome{Class: RateLimited, Status: 429, Wait: 30 * time.Second, Reason: "429 rate limited"}

// Under round-robin, two conversations each stay on their key; when one
// key cools, its conversation moves once and stays on the new key.
func TestSessionStaysOnItsKeyAndMovesOnce(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b", "c")...)
	first := take(t, p, Ask{Session: "s1"}, ok)
	second := take(t, p, Ask{Session: "s2"}, ok)
	if first.Affinity != NewSession || first.Name == second.Name {
		t.Fatalf("first %s (%s), second %s", first.Name, first.Affinity, second.Name)
	}
	for i := range 20 {
		clk.advance(time.Second)
		if l := take(t, p, Ask{Session: "s1"}, ok); l.Name != first.Name || l.Affinity != Hit {
			t.Fatalf("turn %d of s1 went to %s (%s), want %s", i, l.Name, l.Affinity, first.Name)
		}
		take(t, p, Ask{}, ok) // other traffic turns the round-robin
		if l := take(t, p, Ask{Session: "s2"}, ok); l.Name != second.Name {
			t.Fatalf("turn %d of s2 went to %s", i, l.Name)
		}
	}
	// The key of s1 is rate limited: s1 moves, once.
	take(t, p, Ask{Session: "s1"}, rateLimited)
	moved := take(t, p, Ask{Session: "s1"}, ok)
	if moved.Name == first.Name || moved.Affinity != Moved {
		t.Fatalf("after the cooldown s1 went to %s (%s)", moved.Name, moved.Affinity)
	}
	for range 5 {
		take(t, p, Ask{}, ok)
		if l := take(t, p, Ask{Session: "s1"}, ok); l.Name != moved.Name || l.Affinity != Hit {
			t.Fatalf("s1 went to %s (%s) after moving to %s", l.Name, l.Affinity, moved.Name)
		}
	}
	// It stays even once its first key is back.
	clk.advance(time.Minute)
	if l := take(t, p, Ask{Session: "s1"}, ok); l.Name != moved.Name {
		t.Fatalf("s1 went back to %s", l.Name)
	}
	views, _, _ := p.View()
	var hits, moves uint64
	for _, v := range views {
		hits += v.SessionHits
		moves += v.SessionMoves
		if v.Name == moved.Name && v.SessionMoves != 1 {
			t.Errorf("%s counts %d moves, want 1", v.Name, v.SessionMoves)
		}
	}
	if moves != 1 || hits < 45 {
		t.Errorf("hits %d, moves %d", hits, moves)
	}
}

// A conversation whose state is stored with its key never moves: while
// the key cools the request is denied with when it frees; once the key
// is gone, with why.
func TestPinnedSessionWaitsForItsKey(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b", "c")...)
	l := take(t, p, Ask{}, ok)
	p.Bind("resp_1", l.Name)
	for range 5 {
		if got := take(t, p, Ask{Session: "resp_1", Pinned: true}, ok); got.Name != l.Name {
			t.Fatalf("pinned turn went to %s, want %s", got.Name, l.Name)
		}
	}
	take(t, p, Ask{Session: "resp_1", Pinned: true}, rateLimited)
	_, d := p.Take(Ask{Session: "resp_1", Pinned: true})
	if d == nil || d.Code != ConversationKeyBusy || !d.Until.Equal(clk.now.Add(30*time.Second)) {
		t.Fatalf("denial %+v", d)
	}
	// A soft request of the same id may not move it either.
	if _, d := p.Take(Ask{Session: "resp_1"}); d == nil {
		t.Fatal("a pinned conversation moved for a request that did not pin it")
	}
	clk.advance(31 * time.Second)
	if got := take(t, p, Ask{Session: "resp_1", Pinned: true}, ok); got.Name != l.Name {
		t.Fatalf("after the cooldown went to %s", got.Name)
	}
	var rest []KeySpec
	for _, k := range keys("a", "b", "c") {
		if k.Name != l.Name {
			k.Fingerprint = "fp-" + k.Name
			rest = append(rest, k)
		}
	}
	p.Update(Policy{Strategy: RoundRobin}, rest)
	if _, d := p.Take(Ask{Session: "resp_1", Pinned: true}); d == nil || d.Code != ConversationKeyGone || !d.Until.IsZero() {
		t.Fatalf("after the key was removed: %+v", d)
	}
}

// Conversations are forgotten when idle, and the table is bounded.
func TestSessionTableIsBounded(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b")...)
	first := take(t, p, Ask{Session: "old"}, ok)
	clk.advance(sessionIdle + time.Second)
	take(t, p, Ask{}, ok)
	if l := take(t, p, Ask{Session: "old"}, ok); l.Affinity != NewSession {
		t.Errorf("an idle conversation was kept: %s on %s (first %s)", l.Affinity, l.Name, first.Name)
	}
	for i := range maxSessions + 100 {
		l, _ := p.Take(Ask{Session: fmt.Sprint("s", i)})
		l.Done(ok, Spend{})
	}
	if n := p.Sessions(); n > maxSessions {
		t.Errorf("the table holds %d conversations, more than %d", n, maxSessions)
	}
	long := string(make([]byte, 10000))
	take(t, p, Ask{Session: long}, ok)
	if l := take(t, p, Ask{Session: long}, ok); l.Affinity != Hit {
		t.Errorf("a long id: %s", l.Affinity)
	}
}

// An organisation-wide rate limit on one key of a group cools the whole
// group; the next pick is a key outside it. A limit of the key's own
// cools it alone.
func TestOrgWideLimitCoolsTheGroup(t *testing.T) {
	p, _ := newTestPool(FillFirst, KeySpec{Name: "a1", Group: "acme"}, KeySpec{Name: "a2", Group: "acme"}, KeySpec{Name: "solo"})
	own := rateLimited
	take(t, p, Ask{}, own)
	if l := take(t, p, Ask{}, ok); l.Name != "a2" {
		t.Fatalf("after a1's own limit: %s", l.Name)
	}
	p.Reset("a1")
	wide := rateLimited
	wide.OrgWide = true
	if l := take(t, p, Ask{}, wide); l.Name != "a1" {
		t.Fatalf("first pick %s", l.Name)
	}
	if l := take(t, p, Ask{}, ok); l.Name != "solo" {
		t.Fatalf("after an organisation-wide limit: %s", l.Name)
	}
	views, _, _ := p.View()
	for _, v := range views[:2] {
		if v.State != Cooling {
			t.Errorf("%s is %s", v.Name, v.State)
		}
	}
	// Quota: the group shares its billing.
	p2, _ := newTestPool(FillFirst, KeySpec{Name: "a1", Group: "acme"}, KeySpec{Name: "a2", Group: "acme"}, KeySpec{Name: "solo"})
	take(t, p2, Ask{}, Outcome{Class: Quota, Status: 429, Reason: "429 quota"})
	if l := take(t, p2, Ask{}, ok); l.Name != "solo" {
		t.Fatalf("after a quota answer: %s", l.Name)
	}
}

// A key whose answers say it is nearly spent gets fewer requests until
// the reset they gave, then its share again.
func TestPacingSteersAwayFromANearlySpentKey(t *testing.T) {
	p, clk := newTestPool(RoundRobin, keys("a", "b")...)
	p.Update(Policy{Strategy: RoundRobin, PaceBelow: 0.1}, []KeySpec{{Name: "a", Fingerprint: "fp-a"}, {Name: "b", Fingerprint: "fp-b"}})
	low := ok
	low.Left, low.LeftFor = 0.05, 20*time.Second
	plenty := ok
	plenty.Left, plenty.LeftFor = 0.8, 20*time.Second
	count := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			l, d := p.Take(Ask{})
			if d != nil {
				t.Fatal(d.Detail)
			}
			o := plenty
			if l.Name == "a" {
				o = low
			}
			l.Done(o, Spend{})
			got[l.Name]++
			clk.advance(100 * time.Millisecond)
		}
		return got
	}
	got := count(100) // 10 s: a stays scarce
	if got["a"] >= 10 {
		t.Errorf("a nearly spent key got %d of 100 requests", got["a"])
	}
	views, _, _ := p.View()
	if views[0].ScarceUntil.IsZero() {
		t.Error("status does not show a as scarce")
	}
	// Past its reset, with answers that say it has plenty, it takes its
	// share again.
	clk.advance(30 * time.Second)
	low.Left = 0.9
	if got := count(100); got["a"] < 40 {
		t.Errorf("after its reset a got %d of 100", got["a"])
	}
	// Reset forgets it: a takes its share at once.
	low.Left = 0.05
	count(10)
	if views, _, _ := p.View(); views[0].ScarceUntil.IsZero() {
		t.Fatal("a is not nearly spent again")
	}
	p.Reset("a")
	if views, _, _ := p.View(); !views[0].ScarceUntil.IsZero() {
		t.Errorf("a reset key is still nearly spent until %v", views[0].ScarceUntil)
	}
	if take(t, p, Ask{}, ok).Name != "a" && take(t, p, Ask{}, ok).Name != "a" {
		t.Error("a reset key was passed over")
	}
	// Every key scarce: still served.
	p.Update(Policy{Strategy: RoundRobin, PaceBelow: 0.99}, []KeySpec{{Name: "a", Fingerprint: "fp-a"}, {Name: "b", Fingerprint: "fp-b"}})
	if got := count(10); got["a"]+got["b"] != 10 {
		t.Errorf("%v", got)
	}
}

// A group's limits hold its keys together: with rpm 2 for the group,
// its three keys take two requests a minute between them, and the rest
// go to the key outside it; max_concurrent counts every key's requests.
func TestGroupLimitsHoldTheGroup(t *testing.T) {
	p, clk := newTestPool(RoundRobin)
	specs := []KeySpec{{Name: "g1", Group: "acme"}, {Name: "g2", Group: "acme"}, {Name: "g3", Group: "acme"}, {Name: "solo"}}
	for i := range specs {
		specs[i].Fingerprint = "fp-" + specs[i].Name
	}
	p.Update(Policy{Strategy: RoundRobin, Groups: map[string]Limits{"acme": {RPM: 2}}}, specs)
	got := map[string]int{}
	for range 8 {
		got[take(t, p, Ask{}, ok).Name]++
	}
	if got["g1"]+got["g2"]+got["g3"] != 2 || got["solo"] != 6 {
		t.Errorf("8 requests with the group at rpm 2: %v", got)
	}
	if views, _, _ := p.View(); views[2].State != Limited || !strings.Contains(views[2].Reason, "group acme") {
		t.Errorf("a key held by its group's limit: %+v", views[2])
	}
	clk.advance(time.Minute)
	if l := take(t, p, Ask{}, ok); l.Name == "solo" {
		// round-robin may land on solo; the next group key must be free
		if l := take(t, p, Ask{}, ok); l.Name == "solo" {
			t.Errorf("the group did not come back after a minute")
		}
	}

	p.Update(Policy{Strategy: FillFirst, Groups: map[string]Limits{"acme": {MaxConcurrent: 1}}}, specs[:3])
	l1, d := p.Take(Ask{})
	if d != nil {
		t.Fatal(d.Detail)
	}
	if _, d := p.Take(Ask{}); d == nil || !d.OnRelease || !strings.Contains(d.Detail, "group acme") {
		t.Fatalf("a second request with the group at max_concurrent 1: %+v", d)
	}
	l1.Done(ok, Spend{})
	take(t, p, Ask{}, ok)
}

// A request of a conversation costs a table lookup more than one that
// names none: with 10,000 conversations kept, it stays at a few hundred
// nanoseconds.
func BenchmarkTakeSession(b *testing.B) {
	specs := make([]KeySpec, 10)
	for i := range specs {
		specs[i] = KeySpec{Name: fmt.Sprint("k", i), Fingerprint: fmt.Sprint(i)}
	}
	p := NewPool("openai", realClock{})
	p.Update(Policy{Strategy: RoundRobin}, specs)
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprint("session-", i)
		l, _ := p.Take(Ask{Session: ids[i]})
		l.Done(ok, Spend{})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l, _ := p.Take(Ask{Model: "gpt-4o", Session: ids[i%len(ids)]})
		l.Done(ok, Spend{Tokens: 10})
		i++
	}
}

// A stored-state reference the pool has not seen is not pinned to the
// key the strategy picked for it until that key's answer shows it has
// it (Bind): a 429 on that key lets the request look on another.
func TestUnseenReferenceIsPinnedOnlyOnceFound(t *testing.T) {
	p, _ := newTestPool(RoundRobin, keys("a", "b")...)
	first := take(t, p, Ask{Session: "response:resp_x", Pinned: true}, rateLimited)
	l, d := p.Take(Ask{Session: "response:resp_x", Pinned: true})
	if d != nil || l.Name == first.Name {
		t.Fatalf("after a 429 on %s the unseen reference: %+v %+v", first.Name, l, d)
	}
	l.Done(ok, Spend{})
	p.Bind("response:resp_x", l.Name)
	take(t, p, Ask{}, ok)
	if got := take(t, p, Ask{Session: "response:resp_x", Pinned: true}, rateLimited); got.Name != l.Name || got.Affinity != Hit {
		t.Fatalf("once found: %+v", got)
	}
	if _, d := p.Take(Ask{Session: "response:resp_x", Pinned: true}); d == nil || d.Code != ConversationKeyBusy {
		t.Fatalf("a found reference whose key cools: %+v", d)
	}
}
