// SPDX-License-Identifier: MIT

package daemon

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A disable's body is a duration string or nothing; anything else is
// refused with why, rather than read as "until enabled".
func TestDisableBody(t *testing.T) {
	for _, c := range []struct {
		body string
		want time.Duration
		msg  string // in the refusal; "" when accepted
	}{
		{"", 0, ""},
		{"{}", 0, ""},
		{`{"for": null}`, 0, ""},
		{`{"for": ""}`, 0, ""},
		{`{"for": "2h"}`, 2 * time.Hour, ""},
		{`{"for": "1d12h"}`, 36 * time.Hour, ""},
		{`{"for": "36500d"}`, 36500 * 24 * time.Hour, ""},
		{`{"for": 5}`, 0, `"for" is 5, not a duration string`},
		{`{"for": "-1h"}`, 0, "not a positive duration"},
		{`{"for": "0s"}`, 0, "not a positive duration"},
		{`{"for": "-1d"}`, 0, "not a duration"},
		{`{"for": "soon"}`, 0, "not a duration"},
		{`{"for": "36501d"}`, 0, "longer than 100 years"},
		{`{"for": "9999999999h"}`, 0, "not a duration"},
		{`{"for": ["1h"]}`, 0, "not a duration string"},
		{`{"fro": "1h"}`, 0, `unknown field "fro"`},
		{`{"for": "1h"`, 0, "not {\"for\": DURATION}"},
		{`{"for": "1h"} {}`, 0, "more than one value"},
		{`"1h"`, 0, "not {\"for\": DURATION}"},
		{`{"for": "` + strings.Repeat("1", 5000) + `h"}`, 0, "longer than 4096 bytes"},
	} {
		d, msg := disableFor(httptest.NewRequest("POST", "/v1/keys/openai/a/disable", strings.NewReader(c.body)))
		if d != c.want || (c.msg == "") != (msg == "") || !strings.Contains(msg, c.msg) {
			t.Errorf("%.40s: %v %q, want %v %q", c.body, d, msg, c.want, c.msg)
		}
	}
}
