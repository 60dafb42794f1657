package rotate

import "sync/atomic"

// Pool picks among the n keys of one provider, by index. It is safe for
// concurrent use; a Pool is replaced, not changed, when the keyfile is.
type Pool struct {
	n    uint64
	next atomic.Uint64
}

// NewPool makes a pool over n keys.
func NewPool(n int) *Pool { return &Pool{n: uint64(n)} }

// Len is the number of keys in the pool.
func (p *Pool) Len() int { return int(p.n) }

// Pick returns the index of the key for the next request, round-robin,
// and false when the pool has no keys.
func (p *Pool) Pick() (int, bool) {
	if p.n == 0 {
		return 0, false
	}
	return int((p.next.Add(1) - 1) % p.n), true
}
