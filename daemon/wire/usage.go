package wire

import (
	"bytes"
	"math"

	"github.com/llmkey/llmkey/daemon/wire/jsonscan"
	"github.com/llmkey/llmkey/state"
)

// Usage is the tokens one answer used, as the provider reported them.
type Usage struct {
	Input, Output, CacheRead, CacheWrite, Reasoning int
}

// Counts are u's tokens as usage counts them: as the provider said,
// however absurd; the ledger holds each to its range.
func (u Usage) Counts() state.Counts {
	return state.Counts{Input: int64(u.Input), Output: int64(u.Output), CacheRead: int64(u.CacheRead),
		CacheWrite: int64(u.CacheWrite), Reasoning: int64(u.Reasoning)}
}

// Meter reads a copy of a response as it streams to the client and
// keeps only what it needs: for an event stream, the events that carry
// usage, one line at a time; for a JSON body, its last bytes, where every
// provider puts its usage.
type Meter struct {
	sse  bool
	line sseLines

	tail []byte // the last tailSize bytes of a JSON body
	u    Usage
	seen bool
	// finishing: the answer said it is ending (a finish or stop reason,
	// a terminal event); done: its terminal event went by.
	finishing, done bool
	// With wantID (KeepID): head is the first headSize bytes of a JSON
	// body, where the id of what it created is; id, that of a stream's
	// response.created.
	wantID bool
	head   []byte
	id     string
}

// KeepID makes the meter keep what CreatedID needs: only an answer that
// creates something a later request refers to pays for it.
func (m *Meter) KeepID() { m.wantID = true }

// headSize is how much of a JSON answer is kept for its id.
const headSize = 4 << 10

const tailSize = 64 << 10

// NewMeter reads an answer of that content type.
func NewMeter(contentType string) *Meter {
	return &Meter{sse: bytes.HasPrefix([]byte(contentType), []byte("text/event-stream"))}
}

// Write reads the next bytes of the answer; it never fails.
func (m *Meter) Write(p []byte) (int, error) {
	if !m.sse {
		if m.wantID && len(m.head) < headSize {
			m.head = append(m.head, p[:min(len(p), headSize-len(m.head))]...)
		}
		m.tail = append(m.tail, p...)
		if len(m.tail) > 2*tailSize {
			m.tail = append(m.tail[:0], m.tail[len(m.tail)-tailSize:]...)
		}
		return len(p), nil
	}
	for rest := p; len(rest) > 0; {
		n, line, end := m.line.next(rest)
		rest = rest[n:]
		if end == wholeLine { // a longer line is no usage event: skipped
			m.event(line)
		}
	}
	return len(p), nil
}

// event reads one SSE line; only data lines that mention usage are parsed.
func (m *Meter) event(line []byte) {
	data, ok := dataField(line)
	if !ok {
		return
	}
	m.terminal(data)
	if m.wantID && m.id == "" && bytes.Contains(data, []byte(`"response.created"`)) {
		m.id = createdID(data)
	}
	if !bytes.Contains(data, []byte("sage")) { // usage, usageMetadata
		return
	}
	// A chat stream that asked for usage says "usage":null in every
	// chunk but the last: not worth a parse each.
	if bytes.Contains(data, []byte(`"usage":null`)) && !bytes.Contains(data, []byte("usageMetadata")) {
		return
	}
	m.parse(bytes.TrimSpace(data))
}

// terminal notes the events that end a stream, in each format: OpenAI
// chat's [DONE] after a finish_reason, Anthropic's message_stop after a
// stop_reason, Responses' response.completed, Gemini's chunk with a
// finishReason and its usage.
func (m *Meter) terminal(data []byte) {
	switch {
	case bytes.Contains(data, []byte("[DONE]")), bytes.Contains(data, []byte(`"message_stop"`)),
		bytes.Contains(data, []byte(`"response.completed"`)):
		m.finishing, m.done = true, true
	case bytes.Contains(data, []byte(`"finishReason"`)):
		m.finishing = true
		if bytes.Contains(data, []byte("usageMetadata")) {
			m.done = true
		}
	case bytes.Contains(data, []byte(`"finish_reason":"`)), bytes.Contains(data, []byte(`"stop_reason":"`)):
		m.finishing = true
	}
}

// Finishing reports whether the answer said it is ending: what is left
// is its usage and its terminal event, worth reading to the end.
func (m *Meter) Finishing() bool { return m.finishing || !m.sse }

// Done reports whether the stream's terminal event went by: the answer
// was whole, whatever happens after.
func (m *Meter) Done() bool { return m.done }

// CreatedID is the id of what the answer created (KeepID first): a JSON answer's
// top-level "id" (a response, a conversation) or "name" (a Gemini cached
// content), or a stream's response.created id; "" when none.
func (m *Meter) CreatedID() string {
	if m.sse {
		return m.id
	}
	var id, name string
	jsonscan.Members(m.head, func(k []byte, s, e int) { // a cut head still yields its first members
		switch string(k) {
		case "id":
			id, _ = jsonscan.String(m.head[s:e])
		case "name":
			name, _ = jsonscan.String(m.head[s:e])
		}
	})
	if id != "" {
		return id
	}
	return name
}

// createdID is the response id of a response.created event.
func createdID(data []byte) string {
	var id string
	jsonscan.Members(bytes.TrimSpace(data), func(k []byte, s, e int) {
		if string(k) != "response" {
			return
		}
		resp := bytes.TrimSpace(data)[s:e]
		jsonscan.Members(resp, func(k []byte, s, e int) {
			if string(k) == "id" {
				id, _ = jsonscan.String(resp[s:e])
			}
		})
	})
	return id
}

// Usage is what the answer reported; ok is false when it reported none.
func (m *Meter) Usage() (Usage, bool) {
	if !m.sse && len(m.tail) > 0 {
		m.parseTail()
	}
	return m.u, m.seen
}

// parseTail finds the last usage object in a JSON body's tail.
func (m *Meter) parseTail() {
	for _, key := range [][]byte{[]byte(`"usage"`), []byte(`"usageMetadata"`)} {
		i := bytes.LastIndex(m.tail, key)
		if i < 0 {
			continue
		}
		rest := m.tail[i+len(key):]
		j := jsonscan.SkipSpace(rest, 0)
		if j >= len(rest) || rest[j] != ':' {
			continue
		}
		vs := jsonscan.SkipSpace(rest, j+1)
		ve := jsonscan.SkipValue(rest, vs)
		if ve < 0 {
			continue
		}
		var ev usageEvent
		if ev.read(string(key[1:len(key)-1]), rest[vs:ve]) {
			m.apply(&ev)
		}
		return
	}
}

// The usage objects of the three formats, read with the scanner of
// jsonscan.go rather than encoding/json: no allocation, and only the
// fields named here are looked at.
//
//	OpenAI chat       {"usage": {"prompt_tokens", "completion_tokens",
//	                   "prompt_tokens_details": {"cached_tokens"},
//	                   "completion_tokens_details": {"reasoning_tokens"}}}
//	OpenAI Responses  {"type": "response.completed", "response": {"usage":
//	                   {"input_tokens", "output_tokens", "input_tokens_details",
//	                   "output_tokens_details"}}}
//	Anthropic         {"usage": {...}} or message_start {"message": {"usage"}},
//	                   message_delta {"usage": {"output_tokens"}} (cumulative)
//	Gemini            {"usageMetadata": {"promptTokenCount", "candidatesTokenCount",
//	                   "cachedContentTokenCount", "thoughtsTokenCount"}}
//
// They read as encoding/json would decode the same object into structs
// with pointer fields (FuzzUsageEvent checks it): a null resets, a
// repeated key adds to what the first one set, and a field of the wrong
// type makes the whole object unread.
type wireUsage struct {
	prompt, completion, input, output                               optInt
	promptCached, completionReasoning, inputCached, outputReasoning int
	cacheRead, cacheCreation                                        int
}

// optInt is a count that may be absent (or null).
type optInt struct {
	n   int
	set bool
}

type geminiUsage struct {
	prompt, candidates, cached, thoughts int
}

// usageEvent is what a JSON object says of usage: at its top level
// ("usage", "usageMetadata") or one level down ("message", "response").
type usageEvent struct {
	usage, message, response      wireUsage // message and response: their "usage"
	meta                          geminiUsage
	hasUsage, hasMessage, hasResp bool
	hasMessageUsage, hasRespUsage bool
	hasMeta                       bool
}

// read reads the value v of the member key of an event, and reports
// whether it had the type it should.
func (ev *usageEvent) read(key string, v []byte) bool {
	null := string(v) == "null"
	switch key {
	case "usage":
		return readUsage(v, &ev.hasUsage, &ev.usage)
	case "usageMetadata":
		if null {
			ev.hasMeta = false
			return true
		}
		if !ev.hasMeta {
			ev.meta, ev.hasMeta = geminiUsage{}, true
		}
		g := &ev.meta
		ok := true
		return jsonscan.Members(v, func(k []byte, s, e int) {
			switch string(k) {
			case "promptTokenCount":
				ok = readInt(v[s:e], &g.prompt) && ok
			case "candidatesTokenCount":
				ok = readInt(v[s:e], &g.candidates) && ok
			case "cachedContentTokenCount":
				ok = readInt(v[s:e], &g.cached) && ok
			case "thoughtsTokenCount":
				ok = readInt(v[s:e], &g.thoughts) && ok
			}
		}) && ok
	case "message", "response":
		has, hasUsage, u := &ev.hasMessage, &ev.hasMessageUsage, &ev.message
		if key == "response" {
			has, hasUsage, u = &ev.hasResp, &ev.hasRespUsage, &ev.response
		}
		if null {
			*has, *hasUsage = false, false
			return true
		}
		*has = true
		ok := true
		return jsonscan.Members(v, func(k []byte, s, e int) {
			if string(k) == "usage" {
				ok = readUsage(v[s:e], hasUsage, u) && ok
			}
		}) && ok
	}
	return true
}

// readUsage reads a usage object into *w, on top of what an earlier one
// set (*has), or unsets it for a null.
func readUsage(v []byte, has *bool, w *wireUsage) bool {
	if string(v) == "null" {
		*has = false
		return true
	}
	if !*has {
		*w, *has = wireUsage{}, true
	}
	ok := true
	return jsonscan.Members(v, func(k []byte, s, e int) {
		x := v[s:e]
		switch string(k) {
		case "prompt_tokens":
			ok = w.prompt.read(x) && ok
		case "completion_tokens":
			ok = w.completion.read(x) && ok
		case "input_tokens":
			ok = w.input.read(x) && ok
		case "output_tokens":
			ok = w.output.read(x) && ok
		case "prompt_tokens_details":
			ok = readDetail(x, "cached_tokens", &w.promptCached) && ok
		case "completion_tokens_details":
			ok = readDetail(x, "reasoning_tokens", &w.completionReasoning) && ok
		case "input_tokens_details", "input_token_details": // the second: Realtime
			ok = readDetail(x, "cached_tokens", &w.inputCached) && ok
		case "output_tokens_details":
			ok = readDetail(x, "reasoning_tokens", &w.outputReasoning) && ok
		case "cache_read_input_tokens":
			ok = readInt(x, &w.cacheRead) && ok
		case "cache_creation_input_tokens":
			ok = readInt(x, &w.cacheCreation) && ok
		}
	}) && ok
}

// readDetail reads the count name of a details object into *n.
func readDetail(v []byte, name string, n *int) bool {
	if string(v) == "null" {
		return true
	}
	ok := true
	return jsonscan.Members(v, func(k []byte, s, e int) {
		if string(k) == name {
			ok = readInt(v[s:e], n) && ok
		}
	}) && ok
}

func (o *optInt) read(v []byte) bool {
	if string(v) == "null" {
		*o = optInt{}
		return true
	}
	n, ok := jsonInt(v)
	if ok {
		*o = optInt{n, true}
	}
	return ok
}

// readInt reads an integer into *n; a null leaves it as it was.
func readInt(v []byte, n *int) bool {
	if string(v) == "null" {
		return true
	}
	x, ok := jsonInt(v)
	if ok {
		*n = x
	}
	return ok
}

// jsonInt is the JSON number v as an int, if it is an integer that fits.
func jsonInt(v []byte) (int, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	if n > limit {
		return 0, false
	}
	if neg {
		return int(-int64(n)), true
	}
	return int(n), true
}

// parse reads the usage in one event of a stream.
func (m *Meter) parse(data []byte) {
	var ev usageEvent
	ok := true
	if !jsonscan.Members(data, func(k []byte, s, e int) {
		ok = ev.read(string(k), data[s:e]) && ok
	}) || !ok {
		return
	}
	m.apply(&ev)
}

// apply takes an event's usage, in the order of precedence of the formats.
func (m *Meter) apply(ev *usageEvent) {
	switch {
	case ev.hasMeta: // Gemini: the last value wins
		g := ev.meta
		m.u = Usage{Input: subSat(g.prompt, g.cached), CacheRead: g.cached,
			Output: addSat(g.candidates, g.thoughts), Reasoning: g.thoughts}
		m.seen = true
	case ev.hasMessage && ev.hasMessageUsage: // Anthropic message_start
		m.merge(&ev.message)
	case ev.hasResp && ev.hasRespUsage: // OpenAI Responses
		m.merge(&ev.response)
	case ev.hasUsage:
		m.merge(&ev.usage)
	}
}

// merge folds one usage object in. OpenAI chat's is whole. The others
// override only what they carry: an Anthropic message_delta has the
// cumulative output count and, sometimes, input counts.
func (m *Meter) merge(w *wireUsage) {
	m.seen = true
	if w.prompt.set || w.completion.set { // OpenAI chat
		cached := w.promptCached
		m.u = Usage{Input: subSat(w.prompt.n, cached), CacheRead: cached, Output: w.completion.n,
			Reasoning: w.completionReasoning}
		return
	}
	// OpenAI Responses counts cached input inside input_tokens;
	// Anthropic apart, as cache_read_input_tokens.
	cached := w.inputCached
	if w.input.set {
		m.u.Input = subSat(w.input.n, cached)
	}
	if w.output.set {
		m.u.Output = w.output.n
	}
	if c := addSat(cached, w.cacheRead); c > 0 {
		m.u.CacheRead = c
	}
	if w.cacheCreation > 0 {
		m.u.CacheWrite = w.cacheCreation
	}
	if r := w.outputReasoning; r > 0 {
		m.u.Reasoning = r
	}
}

// addSat and subSat do a provider's sums held at the bounds of int, so
// that a count near them stays absurd instead of wrapping to a plausible
// one.
func addSat(a, b int) int {
	switch {
	case b > 0 && a > math.MaxInt-b:
		return math.MaxInt
	case b < 0 && a < math.MinInt-b:
		return math.MinInt
	}
	return a + b
}

func subSat(a, b int) int {
	if b == math.MinInt {
		return addSat(addSat(a, math.MaxInt), 1)
	}
	return addSat(a, -b)
}

// SocketEvent reads one text message of a WebSocket API (the Responses
// API over WebSocket, Realtime): whether it ends a response
// (response.completed, response.done, response.incomplete,
// response.failed), whether it starts one (response.created), and the
// ended response's model and usage.
func SocketEvent(msg []byte) (ev SocketEventInfo) {
	if !bytes.Contains(msg, []byte(`"response.`)) {
		return ev
	}
	var typ string
	var resp []byte
	if !jsonscan.Members(msg, func(k []byte, s, e int) {
		switch string(k) {
		case "type":
			typ, _ = jsonscan.String(msg[s:e])
		case "response":
			resp = msg[s:e]
		}
	}) {
		return ev
	}
	switch typ {
	case "response.created":
		ev.Started = true
		jsonscan.Members(resp, func(k []byte, s, e int) {
			if string(k) == "id" {
				ev.ID, _ = jsonscan.String(resp[s:e])
			}
		})
		return ev
	case "response.completed", "response.done", "response.incomplete", "response.failed":
	default:
		return ev
	}
	ev.Ended = true
	var w wireUsage
	has := false
	jsonscan.Members(resp, func(k []byte, s, e int) {
		switch string(k) {
		case "model":
			m, _ := jsonscan.String(resp[s:e])
			ev.Model = ModelLabel(m)
		case "usage":
			readUsage(resp[s:e], &has, &w)
		}
	})
	if has {
		var m Meter
		m.merge(&w)
		ev.Usage = m.u
	}
	return ev
}

// SocketEventInfo is what SocketEvent read.
type SocketEventInfo struct {
	Started, Ended bool
	// ID is the id of a response.created's response.
	ID    string
	Model string
	Usage Usage
}
