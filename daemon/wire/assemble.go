package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/llmkey/llmkey/daemon/wire/jsonscan"
)

// Demotion: a non-streaming Anthropic request may wait minutes for its
// headers (a large context, extended thinking) and meet a header timeout
// on the way. Sent upstream as a stream, its headers come at once; the
// Assembler adds the stream's events up to the one JSON message the
// non-streamed call would have answered:
//
//	message_start        the message, with "content": [] and its first usage
//	content_block_start  block i as it begins: text "", thinking "",
//	                     tool_use with "input": {}
//	content_block_delta  text_delta, thinking_delta, signature_delta,
//	                     input_json_delta (partial_json, parsed at the
//	                     block's stop), citations_delta
//	message_delta        stop_reason, stop_sequence; usage, whose counts
//	                     replace those of message_start
//	message_stop         the end
//	error                the answer becomes that error, with its status
//
// Every field is kept as the upstream wrote it (raw JSON, strings with
// their escapes), in its order.
//
// A hostile or broken upstream may stream without end. What the message
// holds is counted as it grows, with the copy Result makes of it
// (Footprint); past the Assembler's limit, past maxBlocks content blocks,
// or at a line or event longer than maxLineSize, it stops with
// ErrTooLarge and lets go of all it held.

// Assembler reads an Anthropic event stream and writes its message. The
// zero Assembler holds up to MaxAssembled and feeds no meter.
type Assembler struct {
	lines   sseLines
	data    []byte // the data of the event being read
	meter   *Meter // reads every line too, when set
	limit   int64
	msg     *object
	blocks  []*block
	errBody []byte
	done    bool
	held    int64 // bytes msg, blocks and errBody hold
	err     error
}

// MaxAssembled is the most memory one answer may take to assemble.
const MaxAssembled = 64 << 20

// maxBlocks bounds a message's content blocks. An answer has one per
// text run, thought, tool call or search result: tens, hundreds when
// citations cut its text often.
const maxBlocks = 1 << 14

// What the parts of a message hold besides their bytes, rounded up on a
// 64-bit platform: a block (its struct and its place in the list), an
// object (its struct and map), a member (its map slot and key).
const (
	blockCost  = 256
	objectCost = 384
	memberCost = 144
)

// ErrTooLarge is the error of an answer that needs more memory than it
// may take: ErrOverLimit past the Assembler's limit, or past the limits
// of a message's parts.
var (
	ErrTooLarge  = errors.New("too large to assemble")
	ErrOverLimit = fmt.Errorf("%w: it needs more memory than its limit", ErrTooLarge)
)

// NewAssembler reads a stream into a message that may take limit bytes
// (MaxAssembled at most), and feeds each of its lines to meter (nil:
// none).
func NewAssembler(limit int64, meter *Meter) *Assembler {
	return &Assembler{limit: max(min(limit, MaxAssembled), 1), meter: meter}
}

func (a *Assembler) max() int64 {
	if a.limit == 0 {
		return MaxAssembled
	}
	return a.limit
}

// Footprint is the memory the assembly takes: what the message holds,
// the copy Result writes it into (no larger), and the line and event
// being read.
func (a *Assembler) Footprint() int64 {
	return 2*a.held + int64(cap(a.lines.buf)+cap(a.data))
}

// Ended reports whether there is nothing more to read: the message
// stopped, an error event came, or the stream cannot be assembled.
func (a *Assembler) Ended() bool { return a.done || a.err != nil }

// Write reads the next bytes of the stream; a malformed stream is
// reported by Result.
func (a *Assembler) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0 && a.err == nil; {
		n, line, end := a.lines.next(rest)
		rest = rest[n:]
		a.take(line, end)
	}
	return len(p), nil
}

// take reads what the line reader found, and checks what the message
// takes now.
func (a *Assembler) take(line []byte, end lineEnd) {
	switch end {
	case wholeLine:
		if a.meter != nil {
			a.meter.event(line)
		}
		a.readLine(line)
	case longLine:
		a.tooLarge(fmt.Sprintf("a line longer than %d MiB", maxLineSize>>20))
	}
	if a.err == nil && a.Footprint() > a.max() {
		a.stopWith(fmt.Errorf("%w (%.4g MiB)", ErrOverLimit, float64(a.max())/(1<<20)))
	}
}

func (a *Assembler) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// tooLarge stops the assembly: why says which part is too large.
func (a *Assembler) tooLarge(why string) {
	a.stopWith(fmt.Errorf("%w: %s", ErrTooLarge, why))
}

// stopWith stops the assembly with err and lets go of what it held.
func (a *Assembler) stopWith(err error) {
	a.fail(err)
	a.msg, a.blocks, a.errBody, a.data, a.held = nil, nil, nil, nil, 0
	a.lines = sseLines{}
}

// hold counts n bytes more held.
func (a *Assembler) hold(n int) { a.held += int64(n) }

// add appends v to dst, counting what dst's buffer grew by. A buffer
// grows by doubling: a long string leaves less behind it to collect than
// with append's smaller steps.
func (a *Assembler) add(dst, v []byte) []byte {
	if len(dst)+len(v) > cap(dst) {
		grown := make([]byte, len(dst), max(2*cap(dst), len(dst)+len(v), 64))
		copy(grown, dst)
		a.held += int64(cap(grown) - cap(dst))
		dst = grown
	}
	return append(dst, v...)
}

// readLine takes one line of the event stream: data lines gather, a blank
// line ends the event.
func (a *Assembler) readLine(line []byte) {
	if len(line) == 0 {
		if len(a.data) > 0 {
			a.event(a.data)
			a.data = a.data[:0]
			if cap(a.data) > keptLine {
				a.data = nil
			}
		}
		return
	}
	if v, ok := dataField(line); ok {
		if len(a.data)+1+len(v) > maxLineSize {
			a.tooLarge(fmt.Sprintf("an event longer than %d MiB", maxLineSize>>20))
			return
		}
		if len(a.data) > 0 {
			a.data = append(a.data, '\n')
		}
		a.data = append(a.data, v...)
	}
}

// event applies one event's data.
func (a *Assembler) event(data []byte) {
	var ev struct {
		Type         string          `json:"type"`
		Index        int             `json:"index"`
		Message      json.RawMessage `json:"message"`
		ContentBlock json.RawMessage `json:"content_block"`
		Delta        json.RawMessage `json:"delta"`
		Usage        json.RawMessage `json:"usage"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		a.fail(fmt.Errorf("an event that is not JSON: %w", err))
		return
	}
	if a.done && ev.Type != "ping" {
		return
	}
	switch ev.Type {
	case "message_start":
		msg, ok := parseObject(ev.Message)
		if !ok {
			a.fail(errors.New("message_start: not a JSON object"))
			return
		}
		a.hold(len(ev.Message) + msg.cost())
		a.msg = msg
	case "content_block_start":
		a.startBlock(ev.Index, ev.ContentBlock)
	case "content_block_delta", "content_block_stop":
		if ev.Index < 0 || ev.Index >= len(a.blocks) {
			a.fail(fmt.Errorf("%s for block %d, which did not start", ev.Type, ev.Index))
			return
		}
		if ev.Type == "content_block_stop" {
			a.stop(a.blocks[ev.Index])
			return
		}
		a.delta(a.blocks[ev.Index], ev.Delta)
	case "message_delta":
		a.messageDelta(ev.Delta, ev.Usage)
	case "message_stop":
		a.done = true
	case "error":
		a.errBody = append([]byte(nil), data...)
		a.hold(len(data))
		a.done = true
	}
}

// startBlock begins block i (the next one, or one begun again).
func (a *Assembler) startBlock(i int, raw json.RawMessage) {
	obj, ok := parseObject(raw)
	if !ok || i < 0 || i > len(a.blocks) {
		a.fail(fmt.Errorf("content_block_start %d out of order", i))
		return
	}
	if i == maxBlocks {
		a.tooLarge(fmt.Sprintf("more than %d content blocks", maxBlocks))
		return
	}
	a.hold(blockCost + len(raw) + obj.cost())
	b := &block{obj: obj}
	if i == len(a.blocks) {
		a.blocks = append(a.blocks, b)
	} else {
		a.blocks[i] = b
	}
}

// messageDelta sets what a message_delta carries: stop_reason and
// stop_sequence, and the usage counts it has, over those of the message.
func (a *Assembler) messageDelta(delta, usage json.RawMessage) {
	if a.msg == nil {
		a.fail(errors.New("message_delta before message_start"))
		return
	}
	if d, ok := parseObject(delta); ok {
		a.hold(len(delta) + d.cost())
		for _, m := range d.keys {
			a.msg.setMember(m, d.vals[m.name])
		}
	}
	if len(usage) == 0 {
		return
	}
	u, ok := parseObject(usage)
	if !ok {
		return
	}
	into, ok := parseObject(a.msg.vals["usage"])
	if !ok {
		into = u
	} else {
		for _, m := range u.keys {
			into.setMember(m, u.vals[m.name])
		}
	}
	merged := into.appendTo(nil, "", nil)
	a.hold(len(usage) + u.cost() + into.cost() + len(merged))
	a.msg.set("usage", merged)
}

// block is one content block being built. A string its deltas add to is
// kept as JSON text, from its opening quote, as the upstream escaped it;
// a tool's input as the text its pieces add up to.
type block struct {
	obj                          *object
	text, thinking, sig, partial []byte
	hasText, hasThinking, hasSig bool
	hasPartial                   bool
	citations                    []json.RawMessage
	hasCitations                 bool
}

func (a *Assembler) delta(b *block, raw json.RawMessage) {
	if string(raw) == "null" {
		return
	}
	var typ, text, thinking, sig, partial, citation []byte
	if !jsonscan.Members(raw, func(k []byte, s, e int) {
		v := raw[s:e]
		switch string(k) {
		case "type":
			typ = v
		case "text":
			text = v
		case "thinking":
			thinking = v
		case "signature":
			sig = v
		case "partial_json":
			partial = v
		case "citation":
			citation = v
		}
	}) {
		a.fail(errors.New("a delta that is not a JSON object"))
		return
	}
	ok := true
	switch {
	case isString(typ, "text_delta"):
		b.text, ok = a.addString(b.text, b.obj, "text", text)
		b.hasText = true
	case isString(typ, "thinking_delta"):
		b.thinking, ok = a.addString(b.thinking, b.obj, "thinking", thinking)
		b.hasThinking = true
	case isString(typ, "signature_delta"):
		b.sig, ok = a.addString(b.sig, b.obj, "signature", sig)
		b.hasSig = true
	case isString(typ, "input_json_delta"):
		b.partial, ok = a.addDecoded(b.partial, partial)
		b.hasPartial = true
	case isString(typ, "citations_delta"):
		if citation == nil {
			citation = []byte("null")
		}
		a.hold(len(raw) + 24)
		b.citations = append(b.citations, citation)
		b.hasCitations = true
	}
	if !ok {
		a.fail(errors.New("a delta whose text is not a string"))
	}
}

// addString adds the JSON string v (or null) to the string s being
// built, which begins as the block's key was when it is nil.
func (a *Assembler) addString(s []byte, obj *object, key string, v []byte) ([]byte, bool) {
	if s == nil {
		s = a.add(nil, []byte{'"'})
		if was := obj.vals[key]; len(was) >= 2 && was[0] == '"' {
			s = a.add(s, was[1:len(was)-1])
		}
	}
	switch {
	case v == nil || string(v) == "null":
		return s, true
	case len(v) < 2 || v[0] != '"':
		return s, false
	}
	return a.add(s, v[1:len(v)-1]), true
}

// addDecoded adds the value of the JSON string v (or null) to s.
func (a *Assembler) addDecoded(s, v []byte) ([]byte, bool) {
	switch {
	case v == nil || string(v) == "null":
		return s, true
	case len(v) < 2 || v[0] != '"':
		return s, false
	case bytes.IndexByte(v, '\\') < 0:
		return a.add(s, v[1:len(v)-1]), true
	}
	d, ok := jsonscan.String(v)
	return a.add(s, []byte(d)), ok
}

// isString reports whether the JSON value v is the string s.
func isString(v []byte, s string) bool {
	if bytes.IndexByte(v, '\\') >= 0 {
		d, ok := jsonscan.String(v)
		return ok && d == s
	}
	return len(v) == len(s)+2 && v[0] == '"' && string(v[1:len(v)-1]) == s
}

// stop writes what a block's deltas added up to into it. A string goes
// on from there should a delta come after all.
func (a *Assembler) stop(b *block) {
	for _, f := range []struct {
		has *bool
		s   *[]byte
		key string
	}{{&b.hasText, &b.text, "text"}, {&b.hasThinking, &b.thinking, "thinking"}, {&b.hasSig, &b.sig, "signature"}} {
		if *f.has {
			b.obj.set(f.key, a.add(*f.s, []byte{'"'}))
			*f.s, *f.has = nil, false
		}
	}
	if b.hasPartial && len(b.partial) > 0 {
		in := bytes.TrimSpace(b.partial)
		if !json.Valid(in) {
			a.fail(errors.New("a tool's input streamed as JSON that does not parse"))
			return
		}
		b.obj.set("input", in)
	}
	if b.hasCitations {
		var prior []json.RawMessage
		json.Unmarshal(b.obj.vals["citations"], &prior)
		all, _ := json.Marshal(append(prior, b.citations...))
		a.hold(len(all))
		b.obj.set("citations", all)
	}
	b.hasPartial, b.hasCitations = false, false
	b.partial, b.citations = nil, nil
}

// Result is the answer the stream adds up to: the message (200), or the
// error event it ended with, with that error's status. err says why a
// stream that did not end, or did not parse, has no answer.
func (a *Assembler) Result() (status int, body []byte, err error) {
	if a.err == nil {
		a.take(a.lines.last())
	}
	if a.err == nil && len(a.data) > 0 {
		a.event(a.data)
		a.data = nil
	}
	switch {
	case a.errBody != nil:
		return anthropicErrorStatus(a.errBody), a.errBody, nil
	case a.err != nil:
		return 0, nil, a.err
	case a.msg == nil || !a.done:
		return 0, nil, errors.New("the stream ended before message_stop")
	}
	if _, ok := a.msg.vals["content"]; !ok {
		a.msg.set("content", nil)
	}
	size := a.msg.size() - len(a.msg.vals["content"]) + 2 + max(len(a.blocks)-1, 0)
	for _, b := range a.blocks {
		size += b.obj.size()
	}
	return http.StatusOK, a.msg.appendTo(make([]byte, 0, size), "content", a.appendContent), nil
}

func (a *Assembler) appendContent(out []byte) []byte {
	out = append(out, '[')
	for i, b := range a.blocks {
		if i > 0 {
			out = append(out, ',')
		}
		out = b.obj.appendTo(out, "", nil)
	}
	return append(out, ']')
}

// object is a JSON object whose members keep their order, and their keys
// as written.
type object struct {
	keys []member
	vals map[string][]byte
}

type member struct {
	name   string
	quoted []byte // the key as written, quotes included, when it has escapes
}

// parseObject reads the JSON object raw (valid JSON: it was decoded
// before); its values are raw's bytes.
func parseObject(raw []byte) (*object, bool) {
	o := &object{vals: map[string][]byte{}}
	ok := jsonscan.Members(raw, func(k []byte, s, e int) {
		m := member{name: string(k)}
		if bytes.IndexByte(k, '\\') >= 0 {
			m.quoted = append(append([]byte{'"'}, k...), '"')
			m.name, _ = jsonscan.String(m.quoted)
		}
		o.setMember(m, raw[s:e])
	})
	return o, ok
}

func (o *object) set(k string, v []byte) { o.setMember(member{name: k}, v) }

// setMember sets m's value; a key already there keeps its place.
func (o *object) setMember(m member, v []byte) {
	if _, ok := o.vals[m.name]; !ok {
		o.keys = append(o.keys, m)
	}
	o.vals[m.name] = v
}

// cost is what o holds besides its values.
func (o *object) cost() int {
	n := objectCost
	for _, m := range o.keys {
		n += memberCost + len(m.name) + len(m.quoted)
	}
	return n
}

func (m member) keyLen() int {
	if m.quoted != nil {
		return len(m.quoted)
	}
	return len(m.name) + 2
}

// size is the length of o written out.
func (o *object) size() int {
	n := 2 + max(len(o.keys)-1, 0)
	for _, m := range o.keys {
		n += m.keyLen() + 1 + len(o.vals[m.name])
	}
	return n
}

// appendTo writes o out, the value of the member special by fill.
func (o *object) appendTo(out []byte, special string, fill func([]byte) []byte) []byte {
	out = append(out, '{')
	for i, m := range o.keys {
		if i > 0 {
			out = append(out, ',')
		}
		if m.quoted != nil {
			out = append(out, m.quoted...)
		} else {
			out = append(append(append(out, '"'), m.name...), '"')
		}
		out = append(out, ':')
		if fill != nil && m.name == special {
			out = fill(out)
		} else {
			out = append(out, o.vals[m.name]...)
		}
	}
	return append(out, '}')
}

// anthropicErrorStatus is the HTTP status Anthropic gives each error type.
func anthropicErrorStatus(body []byte) int {
	var e struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	json.Unmarshal(body, &e)
	switch e.Error.Type {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "billing_error":
		return http.StatusPaymentRequired
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "timeout_error":
		return http.StatusGatewayTimeout
	case "overloaded_error":
		return 529
	}
	return http.StatusInternalServerError
}
