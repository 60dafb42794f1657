// SPDX-License-Identifier: MIT

package state

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// fullKey is a key with every field set, each number distinct.
func fullKey() Key {
	k := Key{Provider: "openai", Name: "all", Secret: "sk-aaaaaaaaaaaaaaaaaaaaaaaa"}
	v := reflect.ValueOf(&k).Elem()
	for i, f := range keyFields {
		switch f.Type.Kind() {
		case reflect.Int:
			v.Field(i).SetInt(int64(i + 1))
		case reflect.Float64:
			v.Field(i).SetFloat(float64(i+1) / 1000)
		case reflect.Slice:
			if fieldName(f) != "secret_cmd" { // one place for the secret: the plain one here
				v.Field(i).Set(reflect.ValueOf([]string{"gpt-4o", "o3"}))
			}
		}
	}
	return k
}

// A key's fields are listed once, in Key: the known-field check, the
// validation, the formatter and Limits all follow it. Adding a field to
// Key that one of them cannot handle fails here.
func TestKeyFieldsAgree(t *testing.T) {
	if !slices.Equal(knownFields["key"], KeyFieldNames()) {
		t.Errorf("known fields %v, Key has %v", knownFields["key"], KeyFieldNames())
	}
	for _, f := range keyFields {
		if fieldName(f) == "" {
			t.Errorf("Key.%s has no toml name", f.Name)
		}
	}
	k := fullKey()
	cfg, err := Parse("k.toml", []byte(FormatKey(k)))
	if err != nil {
		t.Fatalf("FormatKey's block does not parse: %v\n%s", err, FormatKey(k))
	}
	if !reflect.DeepEqual(cfg.Keys[0], k) {
		t.Errorf("FormatKey then Parse: %+v, want %+v", cfg.Keys[0], k)
	}
	// The secret's other places.
	for _, other := range []Key{{Provider: "openai", Name: "kc", Keychain: true}, {Provider: "openai", Name: "cmd", SecretCmd: []string{"pass", "show", "openai/cmd"}}} {
		cfg, err := Parse("k.toml", []byte(FormatKey(other)))
		if err != nil || !reflect.DeepEqual(cfg.Keys[0], other) || strings.Contains(FormatKey(other), "secret = ") {
			t.Errorf("FormatKey then Parse of %+v: %v\n%s", other, err, FormatKey(other))
		}
	}
	ints := 0
	for _, f := range keyFields {
		if f.Type.Kind() == reflect.Int {
			ints++
		}
	}
	if len(k.Limits()) != ints {
		t.Errorf("Limits has %d numbers, Key %d", len(k.Limits()), ints)
	}
	for _, l := range k.Limits() {
		bad := k
		v := reflect.ValueOf(&bad).Elem()
		for i, f := range keyFields {
			if fieldName(f) == l.Field {
				v.Field(i).SetInt(-1)
			}
		}
		_, err := Parse("k.toml", []byte(FormatKey(bad)))
		var ke *KeyfileError
		if !errors.As(err, &ke) || ke.Field != "key[1]."+l.Field {
			t.Errorf("%s = -1: %v", l.Field, err)
		}
	}
}

// A key's dollar budgets are its fields of dollars: Budgets lists them
// all, SetBudget sets them, and a negative one is refused by name.
func TestKeyBudgetsAreFields(t *testing.T) {
	k := fullKey()
	floats := 0
	for _, f := range keyFields {
		if f.Type.Kind() == reflect.Float64 {
			floats++
		}
	}
	if len(k.Budgets()) != floats || floats == 0 {
		t.Errorf("Budgets has %d numbers, Key %d", len(k.Budgets()), floats)
	}
	for _, b := range k.Budgets() {
		bad := k
		if !bad.SetBudget(b.Field, -0.5) || bad.SetBudget("rpm", 1) {
			t.Errorf("SetBudget(%s)", b.Field)
		}
		_, err := Parse("k.toml", []byte(FormatKey(bad)))
		var ke *KeyfileError
		if !errors.As(err, &ke) || ke.Field != "key[1]."+b.Field {
			t.Errorf("%s = -0.5: %v", b.Field, err)
		}
	}
}

// fill sets every field of v, recursively, to a value that is not its
// zero: the string "x", the number 1, true, a list or map of one.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Float64:
		v.SetFloat(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		v.SetMapIndex(reflect.ValueOf("x"), e)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	default:
		panic("fill: no value for " + v.Type().String())
	}
}

// Every table's fields are its struct's: a keyfile that sets each field of
// each table is read back whole, with none refused as unknown, and each
// table's list of fields is its struct's toml names.
func TestTableFieldsAgree(t *testing.T) {
	var all fileTOML
	fill(reflect.ValueOf(&all).Elem())
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(all); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := decode("k.toml", []byte(b.String()))
	if err != nil {
		t.Fatalf("a keyfile with every field: %v\n%s", err, b.String())
	}
	got := fileTOML{Key: cfg.Keys, Daemon: cfg.Daemon, Provider: cfg.Providers, Group: cfg.Groups, Pricing: cfg.Pricing}
	if !reflect.DeepEqual(got, all) {
		t.Errorf("read back %+v\nwant %+v", got, all)
	}
	if !slices.Equal(Tables(), []string{"key", "daemon", "provider", "group", "pricing"}) {
		t.Errorf("tables %v", Tables())
	}
	for _, table := range Tables() {
		fields := FieldNames(table)
		for _, f := range fields {
			if f == "" || f == "-" || f != strings.ToLower(f) {
				t.Errorf("%s has a field named %q", table, f)
			}
		}
		if len(fields) == 0 || len(slices.Compact(slices.Sorted(slices.Values(fields)))) != len(fields) {
			t.Errorf("%s's fields %v", table, fields)
		}
	}
}

// readmeRow is a row of the keyfile table (docs/keyfile.md): its table ("daemon"
// for [daemon], "provider" for [provider.NAME]), the fields it documents
// and what it says of them.
type readmeRow struct {
	table   string
	fields  []string
	meaning string
}

func readmeRows(t *testing.T) []readmeRow {
	data, err := os.ReadFile(filepath.Join("..", "docs", "keyfile.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n## The keyfile\n")
	if ok {
		_, rest, ok = strings.Cut(rest, "\n| table | field | meaning |\n| --- | --- | --- |\n")
	}
	if !ok {
		t.Fatal(`docs/keyfile.md has no "| table | field | meaning |" table in "## The keyfile"`)
	}
	rest, _, _ = strings.Cut(rest, "\n\n")
	var out []readmeRow
	table := ""
	for _, line := range strings.Split(rest, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) != 3 {
			t.Fatalf("docs/keyfile.md: a row of the keyfile table that is not | table | field | meaning |: %q", line)
		}
		if c := strings.TrimPrefix(cells[0], "| "); c != "|" && c != "" {
			table, _, _ = strings.Cut(strings.Trim(c, "`[]"), ".")
		}
		row := readmeRow{table: table, meaning: strings.TrimSuffix(cells[2], " |")}
		for _, f := range strings.Split(cells[1], ",") {
			row.fields = append(row.fields, strings.Trim(strings.TrimSpace(f), "`"))
		}
		out = append(out, row)
	}
	return out
}

// The keyfile table (docs/keyfile.md) has a row for every field of every table,
// and none for a field the keyfile does not have.
func TestDocsDocumentEveryField(t *testing.T) {
	doc := map[string][]string{}
	for _, r := range readmeRows(t) {
		doc[r.table] = append(doc[r.table], r.fields...)
	}
	for _, table := range Tables() {
		for _, f := range FieldNames(table) {
			if !slices.Contains(doc[table], f) {
				t.Errorf("docs/keyfile.md has no row for %s's %s", table, f)
			}
		}
		for _, f := range doc[table] {
			if !slices.Contains(FieldNames(table), f) {
				t.Errorf("docs/keyfile.md documents %s's %q, which the keyfile does not have", table, f)
			}
		}
	}
}
