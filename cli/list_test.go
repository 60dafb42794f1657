// SPDX-License-Identifier: MIT

package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/state"
)

// list --json carries every field of a key but its secret, under the
// keyfile's name, and the table's LIMITS column every number set.
func TestListShowsEveryKeyField(t *testing.T) {
	tags := map[string]bool{}
	lt := reflect.TypeFor[listedKey]()
	for i := range lt.NumField() {
		tags[strings.Split(lt.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	for _, f := range state.KeyFieldNames() {
		if f != "secret" && !tags[f] {
			t.Errorf("list --json has no %q", f)
		}
	}
	k := state.Key{Provider: "openai", Name: "a", RPM: 60, TPD: 9, Weight: 2, Models: []string{"gpt-*"}}
	if got := limits(k); got != "rpm=60,tpd=9,weight=2,models=gpt-*" {
		t.Errorf("limits: %q", got)
	}
}
