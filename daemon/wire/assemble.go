// SPDX-License-Identifier: MIT

package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
// Every field is kept as the upstream wrote it (raw JSON), in its order.

// Assembler reads an Anthropic event stream and writes its message.
type Assembler struct {
	line    []byte
	data    []byte // the data of the event being read
	msg     *object
	blocks  []*block
	errBody []byte
	done    bool
	size    int
	err     error
}

// maxAssembled bounds what one demoted answer may hold in memory.
const maxAssembled = 64 << 20

// object is a JSON object whose members keep their order.
type object struct {
	keys []string
	vals map[string]json.RawMessage
}

func parseObject(raw []byte) (*object, error) {
	o := &object{vals: map[string]json.RawMessage{}}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o.set(tok.(string), v)
	}
	return o, nil
}

func (o *object) set(k string, v json.RawMessage) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) str(k string) string {
	var s string
	json.Unmarshal(o.vals[k], &s)
	return s
}

func (o *object) encode(buf *bytes.Buffer) {
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		q, _ := json.Marshal(k)
		buf.Write(q)
		buf.WriteByte(':')
		buf.Write(o.vals[k])
	}
	buf.WriteByte('}')
}

// block is one content block being built.
type block struct {
	obj                          *object
	text, thinking, sig, partial bytes.Buffer
	hasText, hasThinking, hasSig bool
	hasPartial                   bool
	citations                    []json.RawMessage
	hasCitations                 bool
}

// Write reads the next bytes of the stream; a malformed stream is
// reported by Result.
func (a *Assembler) Write(p []byte) (int, error) {
	a.size += len(p)
	if a.size > maxAssembled {
		a.fail(fmt.Errorf("the streamed answer is larger than %d MiB", maxAssembled>>20))
		return len(p), nil
	}
	rest := p
	for len(rest) > 0 && a.err == nil {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			a.line = append(a.line, rest...)
			break
		}
		a.line = append(a.line, rest[:i]...)
		a.readLine(bytes.TrimSuffix(a.line, []byte("\r")))
		a.line = a.line[:0]
		rest = rest[i+1:]
	}
	return len(p), nil
}

func (a *Assembler) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// readLine takes one line of the event stream: data lines gather, a blank
// line ends the event.
func (a *Assembler) readLine(line []byte) {
	if len(line) == 0 {
		if len(a.data) > 0 {
			a.event(a.data)
			a.data = a.data[:0]
		}
		return
	}
	if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
		if len(a.data) > 0 {
			a.data = append(a.data, '\n')
		}
		a.data = append(a.data, bytes.TrimPrefix(v, []byte(" "))...)
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
		msg, err := parseObject(ev.Message)
		if err != nil {
			a.fail(fmt.Errorf("message_start: %w", err))
			return
		}
		a.msg = msg
	case "content_block_start":
		obj, err := parseObject(ev.ContentBlock)
		if err != nil || ev.Index < 0 || ev.Index > len(a.blocks) {
			a.fail(fmt.Errorf("content_block_start %d out of order", ev.Index))
			return
		}
		b := &block{obj: obj}
		b.text.WriteString(obj.str("text"))
		b.thinking.WriteString(obj.str("thinking"))
		b.sig.WriteString(obj.str("signature"))
		if ev.Index == len(a.blocks) {
			a.blocks = append(a.blocks, b)
		} else {
			a.blocks[ev.Index] = b
		}
	case "content_block_delta":
		if ev.Index < 0 || ev.Index >= len(a.blocks) {
			a.fail(fmt.Errorf("content_block_delta for block %d, which did not start", ev.Index))
			return
		}
		a.delta(a.blocks[ev.Index], ev.Delta)
	case "content_block_stop":
		if ev.Index < 0 || ev.Index >= len(a.blocks) {
			a.fail(fmt.Errorf("content_block_stop for block %d, which did not start", ev.Index))
			return
		}
		a.stop(a.blocks[ev.Index])
	case "message_delta":
		if a.msg == nil {
			a.fail(errors.New("message_delta before message_start"))
			return
		}
		if d, err := parseObject(ev.Delta); err == nil {
			for _, k := range d.keys {
				a.msg.set(k, d.vals[k])
			}
		}
		if len(ev.Usage) > 0 {
			u, err := parseObject(ev.Usage)
			if err != nil {
				return
			}
			into, err := parseObject(a.msg.vals["usage"])
			if err != nil {
				into = u
			} else {
				for _, k := range u.keys {
					into.set(k, u.vals[k])
				}
			}
			var buf bytes.Buffer
			into.encode(&buf)
			a.msg.set("usage", buf.Bytes())
		}
	case "message_stop":
		a.done = true
	case "error":
		a.errBody = append([]byte(nil), data...)
		a.done = true
	}
}

func (a *Assembler) delta(b *block, raw json.RawMessage) {
	var d struct {
		Type        string          `json:"type"`
		Text        string          `json:"text"`
		Thinking    string          `json:"thinking"`
		Signature   string          `json:"signature"`
		PartialJSON string          `json:"partial_json"`
		Citation    json.RawMessage `json:"citation"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		a.fail(fmt.Errorf("a delta that is not JSON: %w", err))
		return
	}
	switch d.Type {
	case "text_delta":
		b.text.WriteString(d.Text)
		b.hasText = true
	case "thinking_delta":
		b.thinking.WriteString(d.Thinking)
		b.hasThinking = true
	case "signature_delta":
		b.sig.WriteString(d.Signature)
		b.hasSig = true
	case "input_json_delta":
		b.partial.WriteString(d.PartialJSON)
		b.hasPartial = true
	case "citations_delta":
		b.citations = append(b.citations, d.Citation)
		b.hasCitations = true
	}
}

// stop writes what a block's deltas added up to into it.
func (a *Assembler) stop(b *block) {
	str := func(s string) json.RawMessage {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	if b.hasText {
		b.obj.set("text", str(b.text.String()))
	}
	if b.hasThinking {
		b.obj.set("thinking", str(b.thinking.String()))
	}
	if b.hasSig {
		b.obj.set("signature", str(b.sig.String()))
	}
	if b.hasPartial && b.partial.Len() > 0 {
		in := bytes.TrimSpace(b.partial.Bytes())
		if !json.Valid(in) {
			a.fail(errors.New("a tool's input streamed as JSON that does not parse"))
			return
		}
		b.obj.set("input", append(json.RawMessage(nil), in...))
	}
	if b.hasCitations {
		var prior []json.RawMessage
		json.Unmarshal(b.obj.vals["citations"], &prior)
		all, _ := json.Marshal(append(prior, b.citations...))
		b.obj.set("citations", all)
	}
	b.hasText, b.hasThinking, b.hasSig, b.hasPartial, b.hasCitations = false, false, false, false, false
	b.partial.Reset()
	b.citations = nil
}

// Result is the answer the stream adds up to: the message (200), or the
// error event it ended with, with that error's status. err says why a
// stream that did not end, or did not parse, has no answer.
func (a *Assembler) Result() (status int, body []byte, err error) {
	if len(a.line) > 0 {
		a.readLine(a.line)
		a.line = nil
	}
	if len(a.data) > 0 {
		a.event(a.data)
		a.data = nil
	}
	if a.errBody != nil {
		return anthropicErrorStatus(a.errBody), a.errBody, nil
	}
	if a.err != nil {
		return 0, nil, a.err
	}
	if a.msg == nil || !a.done {
		return 0, nil, errors.New("the stream ended before message_stop")
	}
	var content bytes.Buffer
	content.WriteByte('[')
	for i, b := range a.blocks {
		if i > 0 {
			content.WriteByte(',')
		}
		b.obj.encode(&content)
	}
	content.WriteByte(']')
	a.msg.set("content", content.Bytes())
	var out bytes.Buffer
	a.msg.encode(&out)
	return http.StatusOK, out.Bytes(), nil
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
