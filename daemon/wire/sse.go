package wire

import "bytes"

// An event stream arrives in pieces that cut its lines anywhere. Its
// lines end as the SSE spec says: at "\r\n", "\n" or a lone "\r", the
// "\r\n" of a pair perhaps in two pieces. sseLines finds them without
// copying a line that lies whole in one piece, and holds at most
// maxLineSize of one that does not: a longer line is dropped to its end
// and reported as such.

// maxLineSize bounds one line of an event stream held in memory.
const maxLineSize = 4 << 20

// keptLine is the most a line buffer keeps between lines: a buffer grown
// past it for a long line is given back once that line is read.
const keptLine = 64 << 10

// lineEnd says what sseLines.next found.
type lineEnd int

const (
	noLine    lineEnd = iota // the piece ended inside a line
	wholeLine                // a line ended
	longLine                 // a line longer than maxLineSize ended, dropped
)

// sseLines reads the lines of one event stream.
type sseLines struct {
	buf  []byte // the start of a line cut by the end of a piece
	used bool   // buf holds the line next returned last: empty it first
	cr   bool   // the last piece ended with '\r': a '\n' next ends no line
	long bool   // the line being read passed maxLineSize: drop it to its end
}

// next reads p up to the end of its first line, n bytes of it, and
// returns that line when one ended there. The line is valid until the
// next call.
func (s *sseLines) next(p []byte) (n int, line []byte, end lineEnd) {
	if s.used {
		s.used = false
		s.buf = s.buf[:0]
		if cap(s.buf) > keptLine {
			s.buf = nil
		}
	}
	if s.cr {
		s.cr = false
		if len(p) > 0 && p[0] == '\n' {
			return 1, nil, noLine
		}
	}
	i := indexLineEnd(p)
	if i < 0 {
		s.add(p)
		return len(p), nil, noLine
	}
	n = i + 1
	if p[i] == '\r' {
		switch {
		case i+1 == len(p):
			s.cr = true
		case p[i+1] == '\n':
			n++
		}
	}
	if s.long || len(s.buf)+i > maxLineSize {
		s.long, s.buf = false, nil
		return n, nil, longLine
	}
	if len(s.buf) == 0 {
		return n, p[:i], wholeLine
	}
	s.buf = append(s.buf, p[:i]...)
	s.used = true
	return n, s.buf, wholeLine
}

// add keeps p, the part of a line that does not end in its piece.
func (s *sseLines) add(p []byte) {
	if s.long {
		return
	}
	if len(s.buf)+len(p) > maxLineSize {
		s.long, s.buf = true, nil
		return
	}
	s.buf = append(s.buf, p...)
}

// last is the line the stream ended in without ending it (end: noLine
// when there is none).
func (s *sseLines) last() (line []byte, end lineEnd) {
	switch {
	case s.long:
		end = longLine
	case !s.used && len(s.buf) > 0:
		line, end = s.buf, wholeLine
	}
	*s = sseLines{}
	return line, end
}

// indexLineEnd is the index of the first '\r' or '\n' in p, or -1.
func indexLineEnd(p []byte) int {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		i = len(p)
	}
	if j := bytes.IndexByte(p[:i], '\r'); j >= 0 {
		return j
	}
	if i == len(p) {
		return -1
	}
	return i
}

// dataField is the value of a "data" line (less the one space the spec
// allows after the colon).
func dataField(line []byte) ([]byte, bool) {
	v, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return nil, false
	}
	return bytes.TrimPrefix(v, []byte(" ")), true
}
