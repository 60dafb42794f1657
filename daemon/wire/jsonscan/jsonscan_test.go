// SPDX-License-Identifier: MIT

package jsonscan

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"
)

// member is one member of an object: its key, decoded, and its value's
// text.
type member struct {
	Key   string
	Value string
}

// scan is what Members finds in b.
func scan(t testing.TB, b []byte) ([]member, bool) {
	var out []member
	ok := Members(b, func(key []byte, start, end int) {
		if start < 0 || start > end || end > len(b) {
			t.Fatalf("Members(%q): a value at [%d:%d]", b, start, end)
		}
		var k string // decoded as encoding/json decodes it, for the comparison
		if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil && json.Valid(b) {
			t.Fatalf("Members(%q): a key that is not a string: %q", b, key)
		}
		out = append(out, member{k, string(b[start:end])})
	})
	return out, ok
}

// decoded is what encoding/json reads in b: its members, in order, when
// b is one JSON object (ok), each value's text as the decoder delimits
// it.
func decoded(b []byte) ([]member, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil, false
	}
	out := []member{}
	for dec.More() {
		k, _ := dec.Token()
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, member{k.(string), string(v)})
	}
	return out, true
}

func TestMembers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []member // nil: not an object
	}{
		{`{}`, []member{}},
		{" \t\r\n{ } ", []member{}},
		{`{"model":"gpt-4o","stream":true}`, []member{{"model", `"gpt-4o"`}, {"stream", "true"}}},
		{` { "a" : 1 , "b":[1,{"c":"}]"}] ,"d":"x\"y\\"} `, []member{{"a", "1"}, {"b", `[1,{"c":"}]"}]`}, {"d", `"x\"y\\"`}}},
		{`{"k\u00e9y":null,"n":-1.5e+3,"o":{"p":{}}}`, []member{{"kéy", "null"}, {"n", "-1.5e+3"}, {"o", `{"p":{}}`}}},
		{`{"a":1,"a":2}`, []member{{"a", "1"}, {"a", "2"}}},
		{`{"a":1,}`, nil},
		{`{"a" 1}`, nil},
		{`{"a":1`, nil},
		{`{"a":}`, nil},
		{`{"a":1 "b":2}`, nil},
		{`{a:1}`, nil},
		{`{"a`, nil},
		{`[{"a":1}]`, nil},
		{`"{}"`, nil},
		{``, nil},
	} {
		got, ok := scan(t, []byte(tc.in))
		if want, isObj := decoded([]byte(tc.in)); isObj != (tc.want != nil) || !slices.Equal(want, tc.want) {
			t.Fatalf("%q: encoding/json reads %v %v, the table says %v", tc.in, want, isObj, tc.want)
		}
		if ok != (tc.want != nil) || (ok && !slices.Equal(got, tc.want)) {
			t.Errorf("Members(%q) = %v %v, want %v", tc.in, got, ok, tc.want)
		}
	}
	// Members looks no further than the object: what follows it is the
	// caller's to check.
	if got, ok := scan(t, []byte(`{"a":1} trailing`)); !ok || !slices.Equal(got, []member{{"a", "1"}}) {
		t.Errorf("an object with text after it: %v %v", got, ok)
	}
}

func TestSkips(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`"abc" x`, 5},
		{`"a\"b"`, 6},
		{`"a\\" x`, 5},
		{`"a\\\"" x`, 7},
		{`[1,[2,{"x":"]"}]] x`, 17},
		{`{"a":{"b":[]}},`, 14},
		{`123,`, 3},
		{`-0.5e9]`, 6},
		{`true}`, 4},
		{"null\n", 4},
		{`"abc`, -1},
		{`[1,2`, -1},
		{`{"a":"}`, -1},
		{``, -1},
		{`,`, -1},
	} {
		if got := SkipValue([]byte(tc.in), 0); got != tc.want {
			t.Errorf("SkipValue(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if got := SkipSpace([]byte(" \t\r\n x"), 0); got != 5 {
		t.Errorf("SkipSpace: %d", got)
	}
	if got := SkipString([]byte(`x"a\"b"y`), 1); got != 7 {
		t.Errorf("SkipString: %d", got)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{`"gpt-4o"`, "gpt-4o", true},
		{`""`, "", true},
		{`"a\nb\t\"c\"\\"`, "a\nb\t\"c\"\\", true},
		{`"\u00e9\ud83d\ude00"`, "é😀", true},
		{`"é"`, "é", true},
		{`"a\x"`, "", false},
		{`gpt`, "", false},
		{`"`, "", false},
		{`12`, "", false},
	} {
		got, ok := String([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("String(%q) = %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
		var s string
		if tc.ok && (json.Unmarshal([]byte(tc.in), &s) != nil || s != tc.want) {
			t.Errorf("encoding/json reads %q as %q", tc.in, s)
		}
	}
}

// On any text encoding/json takes for one object, Members finds the same
// members, with the same value texts, in the same order; on any other it
// must not fail (and on a JSON value that is not an object, it reports
// false). A member's string value reads as encoding/json reads it, where
// the text is valid UTF-8 (String returns other bytes as they are,
// unless the string has an escape).
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{}`, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi \"there\""}]}`,
		`{"a":1,}`, `{"k\u00e9y":null}`, `[{"a":1}]`, `{"usage":{"prompt_tokens":10,"completion_tokens":2}}`, `{"a":"\\"}`, `{"a":[1,{"b":"]}"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := scan(t, b)
		want, isObj := decoded(b)
		if json.Valid(b) && (ok != isObj || (ok && !slices.Equal(got, want))) {
			t.Fatalf("Members(%q) = %v %v; encoding/json: %v %v", b, got, ok, want, isObj)
		}
		if !ok || !json.Valid(b) || !utf8.Valid(b) {
			return
		}
		for _, m := range got {
			if m.Value[0] != '"' {
				continue
			}
			var s string
			json.Unmarshal([]byte(m.Value), &s)
			if v, vok := String([]byte(m.Value)); !vok || v != s {
				t.Fatalf("String(%q) = %q %v; encoding/json: %q", m.Value, v, vok, s)
			}
		}
	})
}

// On any text that is one JSON value (with space around it), SkipValue
// ends where the value does, as encoding/json reads it.
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{`"a\"b"`, ` [1,[2,{"x":"]"}]] `, `123`, `true`, `{"a":{"b":[]}}`, `"\\"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		i := SkipSpace(b, 0)
		end := SkipValue(b, i)
		if end > len(b) || end < -1 || (end >= 0 && end <= i) {
			t.Fatalf("SkipValue(%q, %d) = %d", b, i, end)
		}
		if !json.Valid(b) {
			return
		}
		if want := len(bytes.TrimRight(b, " \t\r\n")); end != want {
			t.Fatalf("SkipValue(%q, %d) = %d, want %d", b, i, end, want)
		}
	})
}
