// SPDX-License-Identifier: MIT

package wire

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/llmkey/llmkey/daemon/wire/jsonscan"
	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// What a WebSocket API's messages say beyond usage (usage.go): that the
// upstream refused or failed a response, in words a key can be judged
// by, and what a client's request to start one refers to.

// SocketFailure reads an upstream's message for a refusal or a failure
// of a response, classified as the HTTP answer it stands for would be:
//
//   - an error event, {"type":"error","status":429,"error":{...},
//     "headers":{...}} (the Responses API over WebSocket wraps an HTTP
//     error so: Codex reads it), as an answer of that status, headers and
//     error; one without a status by its error's code;
//   - a response.failed, by its error's code (rate_limit_exceeded,
//     insufficient_quota, ...), else as a server error.
//
// ok is false for any other message.
func SocketFailure(kind state.Kind, msg []byte, now time.Time) (o rotate.Outcome, ok bool) {
	if !bytes.Contains(msg, []byte(`"error"`)) && !bytes.Contains(msg, []byte(`"response.failed"`)) {
		return o, false
	}
	var typ string
	var status int
	var errObj, headers, resp []byte
	if !jsonscan.Members(msg, func(k []byte, s, e int) {
		switch string(k) {
		case "type":
			typ, _ = jsonscan.String(msg[s:e])
		case "status", "status_code":
			status, _ = strconv.Atoi(string(msg[s:e]))
		case "error":
			errObj = msg[s:e]
		case "headers":
			headers = msg[s:e]
		case "response":
			resp = msg[s:e]
		}
	}) {
		return o, false
	}
	switch typ {
	case "error":
		if status == 0 {
			status = statusOfCode(errObj)
		}
	case "response.failed":
		jsonscan.Members(resp, func(k []byte, s, e int) {
			if string(k) == "error" {
				errObj = resp[s:e]
			}
		})
		if status = statusOfCode(errObj); status == 0 {
			status = http.StatusInternalServerError
		}
	default:
		return o, false
	}
	if status < 400 || status > 599 {
		return o, false
	}
	body := append(append([]byte(`{"error":`), orNull(errObj)...), '}')
	return Classify(kind, status, socketHeaders(headers), body, now), true
}

// statusOfCode is the HTTP status an error's code stands for (0: none
// that says anything of the key): a socket's error carries a code where
// an HTTP answer carries its status.
func statusOfCode(errObj []byte) int {
	var code string
	jsonscan.Members(errObj, func(k []byte, s, e int) {
		if string(k) == "code" {
			code, _ = jsonscan.String(errObj[s:e])
		}
	})
	switch code {
	case "rate_limit_exceeded", "rate_limit_error", "insufficient_quota", "billing_hard_limit_reached", "usage_limit_reached":
		return http.StatusTooManyRequests
	case "invalid_api_key", "authentication_error":
		return http.StatusUnauthorized
	case "server_error", "internal_error":
		return http.StatusInternalServerError
	case "overloaded_error", "server_overloaded":
		return http.StatusServiceUnavailable
	}
	return 0
}

// socketHeaders are the headers an error event carries as a JSON object
// of strings or numbers, as an answer's headers.
func socketHeaders(obj []byte) http.Header {
	h := http.Header{}
	jsonscan.Members(obj, func(k []byte, s, e int) {
		v := obj[s:e]
		if str, ok := jsonscan.String(v); ok {
			h.Set(string(k), str)
		} else if len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
			h.Set(string(k), string(v))
		}
	})
	return h
}

func orNull(v []byte) []byte {
	if len(v) == 0 {
		return []byte("null")
	}
	return v
}

// SocketRequest reads a client's message to a WebSocket API: whether it
// asks for a response (response.create), the model it names, and whether
// it refers to state that only the key that made it has: stored state
// (previous_response_id, conversation), or a Realtime session's, which
// lives with the connection (its response.create nests its parameters).
func SocketRequest(msg []byte) (creates bool, model string, refers bool) {
	if !bytes.Contains(msg, []byte(`"response.create"`)) {
		return false, "", false
	}
	var typ string
	var inner []byte
	look := func(b []byte) func(k []byte, s, e int) {
		return func(k []byte, s, e int) {
			switch string(k) {
			case "type":
				if typ == "" {
					typ, _ = jsonscan.String(b[s:e])
				}
			case "model":
				if model == "" {
					model, _ = jsonscan.String(b[s:e])
				}
			case "previous_response_id", "conversation":
				if v := b[s:e]; !bytes.Equal(v, []byte("null")) && !bytes.Equal(v, []byte(`""`)) {
					refers = true
				}
			case "response": // the Realtime API nests its parameters
				inner = b[s:e]
			}
		}
	}
	if !jsonscan.Members(msg, look(msg)) || typ != "response.create" {
		return false, "", false
	}
	if inner != nil {
		jsonscan.Members(inner, look(inner))
		refers = true
	}
	return true, ModelLabel(model), refers
}
