package wire

import (
	"slices"
	"strings"
	"testing"
)

// benchStream is a streamed answer: an Anthropic stream of small deltas,
// as the meter and the assembler read it, in the reads of a 4 KiB buffer.
func benchStream() [][]byte {
	var b strings.Builder
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for range 200 {
		b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello there, \"}}\n\n")
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":200}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	s := []byte(b.String())
	var reads [][]byte
	for len(s) > 0 {
		n := min(4<<10, len(s))
		reads, s = append(reads, s[:n]), s[n:]
	}
	return reads
}

// The meter reads a stream without allocating: lines whole in a piece
// are read where they lie, and one cut by a piece's end reuses a buffer.
func TestMeterReadsWithoutAllocating(t *testing.T) {
	reads := benchStream()
	m := NewMeter("text/event-stream")
	meter := func() {
		for _, r := range reads {
			m.Write(r)
		}
	}
	meter()
	if n := testing.AllocsPerRun(20, meter); n != 0 {
		t.Errorf("%v allocations to meter a stream", n)
	}
}

// BenchmarkMeterStream is the meter reading one streamed answer.
func BenchmarkMeterStream(b *testing.B) {
	reads := benchStream()
	b.ReportAllocs()
	for b.Loop() {
		m := NewMeter("text/event-stream")
		for _, r := range reads {
			m.Write(r)
		}
		if u, ok := m.Usage(); !ok || u.Output != 200 {
			b.Fatalf("usage %+v", u)
		}
	}
}

// BenchmarkAssemblerStream is the assembler adding the same answer up.
func BenchmarkAssemblerStream(b *testing.B) {
	reads := benchStream()
	b.ReportAllocs()
	for b.Loop() {
		var a Assembler
		for _, r := range reads {
			a.Write(r)
		}
		if status, _, err := a.Result(); status != 200 || err != nil {
			b.Fatalf("result %d %v", status, err)
		}
	}
}

// lines is what sseLines finds in pieces, a too-long line as "<long>",
// the unended last line after "<last>".
func lines(pieces ...string) []string {
	var s sseLines
	var out []string
	add := func(line []byte, end lineEnd) {
		switch end {
		case wholeLine:
			out = append(out, string(line))
		case longLine:
			out = append(out, "<long>")
		}
	}
	for _, p := range pieces {
		for rest := []byte(p); len(rest) > 0; {
			n, line, end := s.next(rest)
			rest = rest[n:]
			add(line, end)
		}
	}
	if line, end := s.last(); end != noLine {
		out = append(out, "<last>")
		add(line, end)
	}
	return out
}

// An event stream's lines end at "\r\n", "\n" or a lone "\r", wherever
// the pieces it arrives in are cut; a line longer than maxLineSize is
// dropped to its end, whole.
func TestSSELines(t *testing.T) {
	long := strings.Repeat("x", maxLineSize)
	for _, tc := range []struct {
		name   string
		pieces []string
		want   []string
	}{
		{"lf", []string{"data: a\n\ndata: b\n\n"}, []string{"data: a", "", "data: b", ""}},
		{"crlf", []string{"data: a\r\n\r\ndata: b\r\n\r\n"}, []string{"data: a", "", "data: b", ""}},
		{"cr", []string{"data: a\r\rdata: b\r\r"}, []string{"data: a", "", "data: b", ""}},
		{"mixed", []string{"a\rb\nc\r\n\nd\n\re"}, []string{"a", "b", "c", "", "d", "", "<last>", "e"}},
		{"crlf cut between its bytes", []string{"data: a\r", "\ndata: b\r", "\r\n"}, []string{"data: a", "data: b", ""}},
		{"cr at a cut, then a line", []string{"a\r", "b\n"}, []string{"a", "b"}},
		{"a line across pieces", []string{"da", "ta: ", "{}", "\n"}, []string{"data: {}"}},
		{"no end", []string{"data: a"}, []string{"<last>", "data: a"}},
		{"as long as allowed", []string{long[:10], long[10:], "\ndata: b\n"}, []string{long, "data: b"}},
		{"too long, in pieces", []string{"data: ", long, "data: {\"usage\":1}", "\n", "data: b\n"}, []string{"<long>", "data: b"}},
		{"too long, in one piece", []string{"data: " + long + "\r\ndata: b\r\n"}, []string{"<long>", "data: b"}},
		{"too long, unended", []string{long, "x"}, []string{"<last>", "<long>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lines(tc.pieces...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %.200q, want %.200q", got, tc.want)
			}
			if len(strings.Join(tc.pieces, "")) > 1<<10 {
				return
			}
			// The same, a byte at a time.
			var bytes []string
			for _, c := range []byte(strings.Join(tc.pieces, "")) {
				bytes = append(bytes, string(c))
			}
			if got := lines(bytes...); !slices.Equal(got, tc.want) {
				t.Errorf("a byte at a time: got %q, want %q", got, tc.want)
			}
		})
	}
}

// The meter and the assembler read the same lines: a stream whose lines
// end in "\r" alone is metered and assembled as one whose lines end in
// "\n", and a line too long to hold is skipped whole by the meter.
func TestStreamLineEndingsAgree(t *testing.T) {
	stream := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	want := `{"id":"m","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":9},"stop_reason":"end_turn"}`
	for _, ending := range []string{"\n", "\r\n", "\r"} {
		s := strings.ReplaceAll(stream, "\n", ending)
		m := NewMeter("text/event-stream")
		var a Assembler
		for b := []byte(s); len(b) > 0; {
			n := min(5, len(b))
			m.Write(b[:n])
			a.Write(b[:n])
			b = b[n:]
		}
		if u, ok := m.Usage(); !ok || u != (Usage{Input: 3, Output: 9}) {
			t.Errorf("%q: usage %+v %v", ending, u, ok)
		}
		if status, body, err := a.Result(); status != 200 || string(body) != want || err != nil {
			t.Errorf("%q: assembled %d %s %v", ending, status, body, err)
		}
	}
	// A line past the cap is no event, whatever its end holds.
	m := NewMeter("text/event-stream")
	m.Write([]byte("data: {\"text\":\"" + strings.Repeat("x", maxLineSize)))
	m.Write([]byte(`data: {"usage":{"prompt_tokens":5,"completion_tokens":2}}` + "\n\n"))
	if u, ok := m.Usage(); ok {
		t.Errorf("usage read from inside a line too long to hold: %+v", u)
	}
}
