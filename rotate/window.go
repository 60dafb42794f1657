package rotate

import "time"

// tokWindow is the tokens of the last minute in one-second buckets: a
// fixed ring, so that a busy key neither allocates nor grows. A bucket
// leaves the window a minute after the start of its second.
type tokWindow struct {
	b         [tokSlots]tokBucket
	head, len int
	sum       int
}

// tokSlots exceeds the buckets a minute can hold, so a prune always makes
// room.
const tokSlots = 64

type tokBucket struct {
	sec    int64
	tokens int
}

func (w *tokWindow) prune(now time.Time) {
	for w.len > 0 {
		b := &w.b[w.head]
		if now.Sub(time.Unix(b.sec, 0)) < window {
			return
		}
		w.sum -= b.tokens
		w.head = (w.head + 1) % tokSlots
		w.len--
	}
}

// add counts tokens now; it reports whether a new second's bucket opened.
func (w *tokWindow) add(now time.Time, tokens int) bool {
	w.prune(now)
	w.sum += tokens
	sec := now.Unix()
	if w.len > 0 {
		if tail := &w.b[(w.head+w.len-1)%tokSlots]; tail.sec >= sec {
			tail.tokens += tokens
			return false
		}
	}
	w.b[(w.head+w.len)%tokSlots] = tokBucket{sec: sec, tokens: tokens}
	w.len++
	return true
}

// oldest is the start of the oldest bucket's second.
func (w *tokWindow) oldest() time.Time { return time.Unix(w.b[w.head].sec, 0) }
