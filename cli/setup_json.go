// SPDX-License-Identifier: MIT

package cli

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"

	"github.com/llmkey/llmkey/daemon/wire/jsonscan"
)

// setupMember is one value setup wrote into a JSON file, for an undo
// after the tool rewrote the file (some write theirs on every run, or on
// their first): while the value is still what setup wrote, it is put
// back as it was, or taken out with the objects setup made for it.
type setupMember struct {
	Path  []string `json:"path"`
	Wrote string   `json:"wrote"`
	// Was is the value it replaced; nil: setup added it, and Parents of
	// the objects around it (innermost first), which were not there.
	Was     *string `json:"was,omitempty"`
	Parents int     `json:"parents,omitempty"`
}

// jsonChanges are the values (other than objects) that b holds and a
// does not, or holds otherwise: what setup wrote, when a is the file
// before and b after. Nil when either is not a JSON object.
func jsonChanges(a, b []byte) []setupMember {
	if len(bytes.TrimSpace(a)) == 0 {
		a = []byte("{}")
	}
	var out []setupMember
	if !jsonObject(a) || !jsonObject(b) {
		return nil
	}
	walkChanges(a, b, nil, 0, &out)
	return out
}

// walkChanges adds to out what object b has that object a (nil: none
// there, missing objects around it numbering missing) has not.
func walkChanges(a, b []byte, path []string, missing int, out *[]setupMember) {
	var am, bm map[string]json.RawMessage
	json.Unmarshal(b, &bm)
	if a != nil {
		json.Unmarshal(a, &am)
	}
	keys := make([]string, 0, len(bm))
	for k := range bm {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := append(slices.Clone(path), k)
		av, had := am[k]
		bv := bm[k]
		switch {
		case had && jsonEqual(av, bv):
		case jsonObject(bv) && !had:
			walkChanges(nil, bv, p, missing+1, out)
		case jsonObject(bv) && jsonObject(av):
			walkChanges(av, bv, p, 0, out)
		case had:
			was := string(av)
			*out = append(*out, setupMember{Path: p, Wrote: string(bv), Was: &was})
		default:
			*out = append(*out, setupMember{Path: p, Wrote: string(bv), Parents: missing})
		}
	}
}

func jsonObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// jsonEqual reports whether a and b are the same JSON value, however
// written.
func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// restoreMembers is cur with setup's values taken out (put back as they
// were, or removed), every other byte kept; false when one of them is no
// longer what setup wrote, or there are none.
func (r setupRecord) restoreMembers(cur []byte) ([]byte, bool) {
	if len(r.Members) == 0 || !jsonObject(cur) {
		return nil, false
	}
	out := cur
	for _, m := range slices.Backward(r.Members) {
		if v, ok := jsonGet(out, m.Path); !ok || !jsonEqual([]byte(v), []byte(m.Wrote)) {
			return nil, false
		}
		var err error
		if m.Was != nil {
			out, err = jsonSet(out, m.Path, *m.Was)
		} else {
			out, err = jsonDelete(out, m.Path)
			for i := 1; i <= m.Parents && err == nil; i++ {
				if v, _ := jsonGet(out, m.Path[:len(m.Path)-i]); !jsonEqual([]byte(v), []byte("{}")) {
					break
				}
				out, err = jsonDelete(out, m.Path[:len(m.Path)-i])
			}
		}
		if err != nil {
			return nil, false
		}
	}
	return out, true
}

// jsonDelete takes the member at path out of a JSON document, with the
// comma and space that went with it, every other byte kept.
func jsonDelete(doc []byte, path []string) ([]byte, error) {
	off, obj := 0, doc
	for _, k := range path[:len(path)-1] {
		vs, ve := memberValue(obj, k)
		if vs < 0 {
			return doc, nil
		}
		off, obj = off+vs, obj[vs:ve]
	}
	k := path[len(path)-1]
	vs, ve := memberValue(obj, k)
	if vs < 0 {
		return doc, nil
	}
	// The key's opening quote: back over the colon and the key itself.
	i := vs - 1
	for i >= 0 && obj[i] != ':' {
		i--
	}
	for i--; i >= 0 && obj[i] != '"'; i-- {
	}
	start := i - len(k) - 1
	from, to := start, ve
	if next := jsonscan.SkipSpace(obj, ve); next < len(obj) && obj[next] == ',' {
		to = jsonscan.SkipSpace(obj, next+1) // the member after takes its place
	} else if prev := lastNonSpace(obj, start); obj[prev] == ',' {
		from = prev // the last member: the comma before it goes
	} else { // the only member
		from, to = prev+1, jsonscan.SkipSpace(obj, ve)
	}
	return slices.Concat(doc[:off+from], doc[off+to:]), nil
}

// memberValue is where key's value starts and ends in object obj; -1
// when it has none.
func memberValue(obj []byte, key string) (int, int) {
	vs, ve := -1, -1
	jsonscan.Members(obj, func(k []byte, s, e int) {
		if string(k) == key {
			vs, ve = s, e
		}
	})
	return vs, ve
}

// jsonOffset is where the value at path starts in doc (0 when it has
// none).
func jsonOffset(doc []byte, path []string) int {
	off, obj := 0, doc
	for _, k := range path {
		vs, ve := memberValue(obj, k)
		if vs < 0 {
			return 0
		}
		off, obj = off+vs, obj[vs:ve]
	}
	return off
}

func lastNonSpace(b []byte, i int) int {
	for i--; i > 0 && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'); i-- {
	}
	return i
}
