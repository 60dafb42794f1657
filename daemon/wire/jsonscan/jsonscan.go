// SPDX-License-Identifier: MIT

// Package jsonscan finds members and values in JSON text without decoding
// it: where a top-level field's value starts and ends, so that a caller
// reads a few fields of a large body, or edits one value of a user's file
// and keeps every other byte.
package jsonscan

import "encoding/json"

// What the proxy needs of a request body is two or three top-level fields,
// and of an answer the counts in its usage object. These scan for them
// without decoding the JSON (a body may be megabytes of messages): no
// allocation but the model's name, and a shallow stack.

// Members calls fn for each member of the JSON object in b, with the raw
// key (between its quotes) and where the value starts and ends. It
// reports false when b is not a well-formed object at the top level
// (values are only skipped, not checked).
func Members(b []byte, fn func(key []byte, start, end int)) bool {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		if b[i] != '"' {
			return false
		}
		kend := SkipString(b, i)
		if kend < 0 {
			return false
		}
		key := b[i+1 : kend-1]
		i = SkipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		vs := SkipSpace(b, i+1)
		ve := SkipValue(b, vs)
		if ve < 0 {
			return false
		}
		fn(key, vs, ve)
		i = SkipSpace(b, ve)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return true
		case ',':
			i = SkipSpace(b, i+1)
		default:
			return false
		}
	}
	return false
}

func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipString returns the index after the string that starts at b[i] ('"'),
// or -1.
func SkipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// SkipValue returns the index after the value that starts at b[i], or -1.
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = SkipString(b, i)
				if i < 0 {
					return -1
				}
				i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default: // a number, true, false or null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// String is the value of the JSON string v (quotes included).
func String(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' {
			var s string
			return s, json.Unmarshal(v, &s) == nil
		}
	}
	return string(v[1 : len(v)-1]), true
}
