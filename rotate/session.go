// SPDX-License-Identifier: MIT

package rotate

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Affinity keeps a conversation on the key that served it. A request
// names its conversation (Ask.Session); the pool remembers which key took
// it, and gives the next request of the same conversation that key while
// it can serve. A prompt cache lives with the key's organisation, so a
// conversation that moves pays its whole prompt again; one whose state is
// stored upstream (a previous response, a conversation object, a cached
// content) cannot move at all, and waits for its key or is told why not.
//
// The table is bounded: maxSessions conversations per pool, the least
// recently used dropped first, and a conversation idle for longer than
// sessionIdle (pinned: pinnedIdle) is forgotten. Nothing runs on a timer:
// expiry is checked when a conversation is looked up or the table grows.

// Affinity is what a conversation's request found in the table.
type Affinity uint8

const (
	NoSession  Affinity = iota // the request names no conversation
	NewSession                 // a conversation not seen before (or forgotten)
	Hit                        // served by the key that served it before
	Moved                      // its key could not serve: moved to another, where it stays
)

func (a Affinity) String() string {
	return [...]string{"none", "new", "hit", "moved"}[a]
}

// The table's bounds.
const (
	maxSessions = 50000
	// A prompt cache lasts minutes to an hour; a stored response, days.
	sessionIdle = time.Hour
	pinnedIdle  = 24 * time.Hour
	// maxSessionID: longer ids are kept as their hash.
	maxSessionID = 128
)

type session struct {
	id     string
	key    string
	pinned bool
	last   time.Time
}

type sessionTable struct {
	byID map[string]*list.Element
	lru  list.List // front: the most recently used
}

func sessionID(id string) string {
	if len(id) <= maxSessionID {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (s *session) idle() time.Duration {
	if s.pinned {
		return pinnedIdle
	}
	return sessionIdle
}

// get finds the conversation id, unless it was idle too long.
func (t *sessionTable) get(id string, now time.Time) (*session, bool) {
	e, ok := t.byID[sessionID(id)]
	if !ok {
		return nil, false
	}
	s := e.Value.(*session)
	if now.Sub(s.last) > s.idle() {
		t.remove(e)
		return nil, false
	}
	return s, true
}

// put binds the conversation id to key, as used at now. A pinned binding
// stays pinned.
func (t *sessionTable) put(id, key string, pinned bool, now time.Time) {
	id = sessionID(id)
	if t.byID == nil {
		t.byID = map[string]*list.Element{}
	}
	if e, ok := t.byID[id]; ok {
		s := e.Value.(*session)
		s.key, s.pinned, s.last = key, s.pinned || pinned, now
		t.lru.MoveToFront(e)
		return
	}
	t.byID[id] = t.lru.PushFront(&session{id: id, key: key, pinned: pinned, last: now})
	// Drop what went idle at the back, and the least recently used past
	// the bound.
	for e := t.lru.Back(); e != nil; e = t.lru.Back() {
		s := e.Value.(*session)
		if t.lru.Len() <= maxSessions && now.Sub(s.last) <= s.idle() {
			break
		}
		t.remove(e)
	}
}

func (t *sessionTable) remove(e *list.Element) {
	delete(t.byID, e.Value.(*session).id)
	t.lru.Remove(e)
}

// len is how many conversations the table holds.
func (t *sessionTable) len() int { return t.lru.Len() }
