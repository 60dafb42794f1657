// SPDX-License-Identifier: MIT

package proxy

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

// What rotation knows of a key carries every limit of the keyfile's Key,
// under the same name (a dollar budget in nano-dollars, its name less
// "USD"), and a change of any field changes its entry.
func TestKeySpecCarriesEveryField(t *testing.T) {
	k := state.Key{Provider: "openai", Name: "a", Secret: "sk-x", Models: []string{"gpt-*"}}
	kv := reflect.ValueOf(&k).Elem()
	kt := kv.Type()
	for i := range kt.NumField() {
		switch kt.Field(i).Type.Kind() {
		case reflect.Int:
			kv.Field(i).SetInt(int64(10 + i))
		case reflect.Float64:
			kv.Field(i).SetFloat(float64(10+i) / 1000)
		}
	}
	spec := Key{Key: k, Fingerprint: "f"}.Spec()
	sv := reflect.ValueOf(spec)
	for i := range kt.NumField() {
		f := kt.Field(i)
		if f.Name == "Provider" || f.Name == "Secret" || f.Tag.Get("spec") == "-" {
			continue // the pool is the provider's; the secret stays here; headers are not rotation's
		}
		want := kv.Field(i).Interface()
		name := f.Name
		if f.Type.Kind() == reflect.Float64 {
			name, want = strings.Replace(name, "USD", "", 1), int64(math.Round(kv.Field(i).Float()*rotate.NanoUSD))
		}
		got := sv.FieldByName(name)
		if !got.IsValid() {
			t.Errorf("rotate.KeySpec has no %s", name)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), want) {
			t.Errorf("KeySpec.%s = %v, want %v", f.Name, got.Interface(), kv.Field(i).Interface())
		}
	}
	for i := range kt.NumField() {
		changed := k
		cv := reflect.ValueOf(&changed).Elem().Field(i)
		switch cv.Kind() {
		case reflect.Int:
			cv.SetInt(cv.Int() + 1)
		case reflect.Float64:
			cv.SetFloat(cv.Float() + 0.5)
		case reflect.String:
			if kt.Field(i).Name == "Secret" || kt.Field(i).Name == "Name" {
				continue // the fingerprint tells that apart; a renamed key is the same key
			}
			cv.SetString(cv.String() + "x")
		case reflect.Slice:
			cv.Set(reflect.ValueOf([]string{"o3"}))
		case reflect.Bool:
			cv.SetBool(!cv.Bool())
		}
		if (Key{Key: changed}).Spec().Entry == spec.Entry {
			t.Errorf("a change of %s leaves the entry as it was", kt.Field(i).Name)
		}
	}
}
