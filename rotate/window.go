// SPDX-License-Identifier: MIT

package rotate

import (
	"math"
	"time"
)

// minuteWindow is the requests and tokens of the last minute in
// one-second buckets: a fixed ring of 1.5 KiB, so that a key costs the
// same whatever its limits and however busy it is, and counting neither
// allocates nor grows. Every key keeps one, limits or not, for status.
//
// A bucket leaves the window a minute after the start of its second: a
// request or a token counts for between 59 and 60 seconds, and a key at
// its rpm or tpm frees when the oldest second that holds enough of them
// has left.
type minuteWindow struct {
	b            [slots]bucket
	head, len    int
	reqs, tokens int
}

// slots exceeds the buckets a minute can hold, so a prune always makes
// room.
const slots = 64

type bucket struct {
	sec          int64
	reqs, tokens int
}

// maxAnswerTokens is the most one answer counts toward tpm and tpd:
// input, output and cache writes of at most 10^9 each, as usage bounds
// them (int on 32-bit platforms).
const maxAnswerTokens = min(3_000_000_000, math.MaxInt)

// satAdd is a+b for counts (never negative), held at the largest int
// instead of wrapping.
func satAdd(a, b int) int {
	if b > math.MaxInt-a {
		return math.MaxInt
	}
	return a + b
}

// satAdd64 is satAdd for int64 counts (nano-dollars).
func satAdd64(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

func (w *minuteWindow) prune(now time.Time) {
	for w.len > 0 {
		b := &w.b[w.head]
		if now.Sub(time.Unix(b.sec, 0)) < window {
			return
		}
		w.reqs -= b.reqs
		if w.tokens == math.MaxInt { // held, not the true sum: count again
			w.tokens = 0
			for i := 1; i < w.len; i++ {
				w.tokens = satAdd(w.tokens, w.b[(w.head+i)%slots].tokens)
			}
		} else {
			w.tokens -= b.tokens
		}
		w.head = (w.head + 1) % slots
		w.len--
	}
}

// at is the bucket of now's second, opened when it is not there yet.
func (w *minuteWindow) at(now time.Time) *bucket {
	w.prune(now)
	sec := now.Unix()
	if w.len > 0 {
		// A clock that stepped back counts in the newest bucket.
		if tail := &w.b[(w.head+w.len-1)%slots]; tail.sec >= sec {
			return tail
		}
	}
	b := &w.b[(w.head+w.len)%slots]
	*b = bucket{sec: sec}
	w.len++
	return b
}

// request counts a request started at now.
func (w *minuteWindow) request(now time.Time) {
	w.at(now).reqs++
	w.reqs++
}

// spend counts tokens used at now. It reports whether they are the first
// of their second's bucket, and that bucket's second: least-used queues
// the moment they leave the window.
func (w *minuteWindow) spend(now time.Time, tokens int) (int64, bool) {
	b := w.at(now)
	first := b.tokens == 0
	b.tokens = satAdd(b.tokens, tokens)
	w.tokens = satAdd(w.tokens, tokens)
	return b.sec, first
}

// frees is when the window will hold less than limit of what count
// counts (requests or tokens), whose sum is sum; the caller has pruned it
// and found it at the limit.
func (w *minuteWindow) frees(limit, sum int, count func(*bucket) int) time.Time {
	var last int64
	for i := range w.len {
		b := &w.b[(w.head+i)%slots]
		last = b.sec
		if sum -= count(b); sum < limit {
			break
		}
	}
	return time.Unix(last, 0).Add(window)
}

func bucketReqs(b *bucket) int   { return b.reqs }
func bucketTokens(b *bucket) int { return b.tokens }
