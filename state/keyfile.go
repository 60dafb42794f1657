// SPDX-License-Identifier: MIT

package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/llmkey/llmkey/rotate"
)

// Key is one [[key]] table: a secret and the limits that apply to it.
// Its fields are the keyfile's list of them: the known-field check, the
// validation of limits, FormatKey and list read them from here (by their
// toml tags, in this order).
type Key struct {
	Provider string `toml:"provider" json:"provider"`
	Name     string `toml:"name" json:"name"`
	Secret   string `toml:"secret" json:"-"`
	// Or the secret comes from a command's output (argv), or the OS
	// keychain (service "llmkey", account PROVIDER/NAME); exactly one of
	// the three.
	SecretCmd []string `toml:"secret_cmd" json:"secret_cmd,omitempty" spec:"-"`
	Keychain  bool     `toml:"keychain" json:"keychain,omitempty" spec:"-"`
	// Numbers have a largest value (max): a keyfile that passes
	// validation must load without a huge allocation or an overflow (a
	// key's rpm window holds a slot per request).
	RPM           int `toml:"rpm" json:"rpm,omitempty" max:"100000"`
	TPM           int `toml:"tpm" json:"tpm,omitempty" max:"1000000000000"`
	MaxConcurrent int `toml:"max_concurrent" json:"max_concurrent,omitempty" max:"100000"`
	// Daily budgets, per UTC day: requests and tokens.
	RPD int `toml:"rpd" json:"rpd,omitempty" max:"1000000000000"`
	TPD int `toml:"tpd" json:"tpd,omitempty" max:"1000000000000"`
	// Dollar budgets, per UTC day and UTC month, at the prices usage
	// knows (built in, or [pricing]).
	BudgetUSDDay   float64  `toml:"budget_usd_day" json:"budget_usd_day,omitempty" max:"1000000"`
	BudgetUSDMonth float64  `toml:"budget_usd_month" json:"budget_usd_month,omitempty" max:"1000000"`
	Weight         int      `toml:"weight" json:"weight,omitempty" max:"1000000"`
	Models         []string `toml:"models" json:"models,omitempty"`
	// Tags name selections of keys: llmkey exec --tag work.
	Tags []string `toml:"tags" json:"tags,omitempty" spec:"-"`
	// Group names the organisation (or project) whose quota the key
	// shares with the other keys of its group: an organisation-wide
	// limit on one cools them all.
	Group string `toml:"group" json:"group,omitempty"`
	// Organization and Project go upstream with this key only, as the
	// OpenAI-format headers (OpenAI-Organization, OpenAI-Project); a
	// client's own are never sent with another key.
	Organization string `toml:"organization" json:"organization,omitempty" spec:"-"`
	Project      string `toml:"project" json:"project,omitempty" spec:"-"`
}

// keyFields are Key's fields: their keyfile names and their place.
var keyFields = func() []reflect.StructField {
	t := reflect.TypeFor[Key]()
	out := make([]reflect.StructField, t.NumField())
	for i := range out {
		out[i] = t.Field(i)
	}
	return out
}()

func fieldName(f reflect.StructField) string { return strings.Split(f.Tag.Get("toml"), ",")[0] }

// FieldNames are the fields a table of the keyfile may have (one of
// Tables: "key", "daemon", "provider" of each [provider.NAME], ...), in
// the order of the struct that holds them.
func FieldNames(table string) []string { return slices.Clone(knownFields[table]) }

// Tables are the keyfile's tables, by their names in it.
func Tables() []string { return slices.Clone(tableNames) }

// KeyFieldNames are the fields a [[key]] table may have, in order.
func KeyFieldNames() []string {
	out := make([]string, len(keyFields))
	for i, f := range keyFields {
		out[i] = fieldName(f)
	}
	return out
}

// Limit is one of a key's numbers: a limit (0: none) or its weight.
type Limit struct {
	Field string // its keyfile name: "rpm"
	Value int
	Max   int // the largest value the keyfile may give it
}

// SetLimit sets k's number of that keyfile name; it reports whether k
// has one.
func (k *Key) SetLimit(field string, v int) bool {
	rv := reflect.ValueOf(k).Elem()
	for i, f := range keyFields {
		if f.Type.Kind() == reflect.Int && fieldName(f) == field {
			rv.Field(i).SetInt(int64(v))
			return true
		}
	}
	return false
}

// Limits are k's numbers, in keyfile order.
func (k Key) Limits() []Limit {
	v := reflect.ValueOf(k)
	var out []Limit
	for i, f := range keyFields {
		if f.Type.Kind() == reflect.Int {
			max, err := strconv.Atoi(f.Tag.Get("max"))
			if err != nil {
				panic("state.Key." + f.Name + " has no max tag")
			}
			out = append(out, Limit{Field: fieldName(f), Value: int(v.Field(i).Int()), Max: max})
		}
	}
	return out
}

// Budget is one of a key's dollar budgets (0: none).
type Budget struct {
	Field string // its keyfile name: "budget_usd_day"
	Value float64
	Max   float64 // the largest value the keyfile may give it
}

// Budgets are k's dollar budgets, in keyfile order.
func (k Key) Budgets() []Budget {
	v := reflect.ValueOf(k)
	var out []Budget
	for i, f := range keyFields {
		if f.Type.Kind() == reflect.Float64 {
			max, err := strconv.ParseFloat(f.Tag.Get("max"), 64)
			if err != nil {
				panic("state.Key." + f.Name + " has no max tag")
			}
			out = append(out, Budget{Field: fieldName(f), Value: v.Field(i).Float(), Max: max})
		}
	}
	return out
}

// SetBudget sets k's budget of that keyfile name; it reports whether k
// has one.
func (k *Key) SetBudget(field string, v float64) bool {
	rv := reflect.ValueOf(k).Elem()
	for i, f := range keyFields {
		if f.Type.Kind() == reflect.Float64 && fieldName(f) == field {
			rv.Field(i).SetFloat(v)
			return true
		}
	}
	return false
}

// Ref is how a person names a key on the command line: PROVIDER/NAME.
func (k Key) Ref() string { return k.Provider + "/" + k.Name }

// ProviderConfig is a [provider.NAME] table: an override of a built-in
// provider, or a new provider when Kind is set.
type ProviderConfig struct {
	Kind                  Kind            `toml:"kind"`
	BaseURL               string          `toml:"base_url"`
	Strategy              rotate.Strategy `toml:"strategy"`
	ResponseHeaderTimeout Duration        `toml:"response_header_timeout"`
	StreamIdleTimeout     Duration        `toml:"stream_idle_timeout"`
	// Fallback names providers of the same kind that serve a request no
	// key of this one can, in order, after PrimaryWait; FallbackModels
	// renames the model for them.
	Fallback       []string          `toml:"fallback"`
	FallbackModels map[string]string `toml:"fallback_models"`
	PrimaryWait    *Duration         `toml:"primary_wait"`
	// DemoteToStream (anthropic kind): send non-streaming requests
	// upstream as streams and answer the one JSON they add up to.
	DemoteToStream bool `toml:"demote_to_stream"`
}

// DefaultPrimaryWait is how long a request waits for a key of its own
// provider before it falls over to a fallback, when primary_wait is not
// set.
const DefaultPrimaryWait = 2 * time.Second

// GroupConfig is a [group.NAME] table: limits that every key with
// group = NAME counts toward together (per provider), as an
// organisation's limits hold all of its keys.
type GroupConfig struct {
	RPM            int     `toml:"rpm"`
	TPM            int     `toml:"tpm"`
	MaxConcurrent  int     `toml:"max_concurrent"`
	RPD            int     `toml:"rpd"`
	TPD            int     `toml:"tpd"`
	BudgetUSDDay   float64 `toml:"budget_usd_day"`
	BudgetUSDMonth float64 `toml:"budget_usd_month"`
}

// Config is a parsed, validated keyfile.
type Config struct {
	Path      string
	Keys      []Key
	Daemon    DaemonConfig
	Providers map[string]ProviderConfig
	Groups    map[string]GroupConfig
	// Pricing is [pricing."MODEL"]: dollars per million tokens.
	Pricing map[string]Price

	keyLines []int // 1-based header line of each [[key]]; 0 when unknown
}

type fileTOML struct {
	Key      []Key                     `toml:"key"`
	Daemon   DaemonConfig              `toml:"daemon"`
	Provider map[string]ProviderConfig `toml:"provider"`
	Group    map[string]GroupConfig    `toml:"group"`
	Pricing  map[string]Price          `toml:"pricing"`
}

// Provider resolves a provider name against the built-ins and the
// keyfile's [provider.NAME] tables.
func (c *Config) Provider(name string) (Provider, bool) {
	p, builtin := builtins[name]
	o, override := c.Providers[name]
	if !builtin && !override {
		return Provider{}, false
	}
	p.Name = name
	if o.Kind != "" {
		p.Kind = o.Kind
	}
	if o.BaseURL != "" {
		p.BaseURL = strings.TrimRight(o.BaseURL, "/")
	}
	p.Strategy = o.Strategy
	if p.Strategy == "" {
		p.Strategy = c.Daemon.Strategy
	}
	if p.Strategy == "" {
		p.Strategy = rotate.DefaultStrategy
	}
	p.Fallback, p.FallbackModels, p.DemoteToStream = o.Fallback, o.FallbackModels, o.DemoteToStream
	p.PrimaryWait = DefaultPrimaryWait
	if o.PrimaryWait != nil {
		p.PrimaryWait = time.Duration(*o.PrimaryWait)
	}
	p.ResponseHeaderTimeout = o.ResponseHeaderTimeout.or(c.Daemon.HeaderTimeout())
	p.StreamIdleTimeout = o.StreamIdleTimeout.or(c.Daemon.IdleTimeout())
	return p, true
}

// ProviderNames lists every provider that has at least one key, in the
// order their first key appears.
func (c *Config) ProviderNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range c.Keys {
		if !seen[k.Provider] {
			seen[k.Provider] = true
			out = append(out, k.Provider)
		}
	}
	return out
}

// Listen is the proxy's address.
func (c *Config) Listen() string {
	if c.Daemon.Listen != "" {
		return c.Daemon.Listen
	}
	return DefaultListen
}

// KeyLine is the 1-based line of the i-th key's [[key]] header, or 0.
func (c *Config) KeyLine(i int) int {
	if i < len(c.keyLines) {
		return c.keyLines[i]
	}
	return 0
}

// Find returns the index of the key PROVIDER/NAME, or -1.
func (c *Config) Find(provider, name string) int {
	for i, k := range c.Keys {
		if k.Provider == provider && k.Name == name {
			return i
		}
	}
	return -1
}

// MaxKeyfileSize bounds what we read: a keyfile is hand-sized.
const MaxKeyfileSize = 4 << 20

// Load reads and validates the keyfile at path after checking that only
// its owner can read it. A missing file is reported with an error that
// errors.Is(err, fs.ErrNotExist).
func Load(path string) (*Config, error) {
	data, err := ReadPrivate(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ReadPrivate reads the keyfile, which must be a regular file, owned by us
// and unreadable by group and others. The checks are made on the opened
// file (fstat), so the file cannot be swapped between check and read.
func ReadPrivate(path string) ([]byte, error) { return readPrivate(path, keyfileFile) }

// privateFile says which file readPrivate reads, for its messages.
type privateFile struct {
	what    string // "keyfile", "token file"
	keyfile bool   // its problems are the keyfile's (exit code)
	// notRegular is the hint for a file that is not a regular file.
	notRegular string
}

var (
	keyfileFile = privateFile{what: "keyfile", keyfile: true, notRegular: "point --keyfile or LLMKEY_KEYFILE at your keyfile"}
	tokenFile   = privateFile{what: "token file",
		notRegular: "move it out of the way; the daemon then makes a new token (restart the tools started before)"}
)

func readPrivate(path string, pf privateFile) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s does not exist: %w", pf.what, path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("open %s: %w", pf.what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", pf.what, err)
	}
	if err := checkPrivate(path, fi, pf); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", pf.what, path, err)
	}
	if len(data) > MaxKeyfileSize && pf.keyfile {
		return nil, &KeyfileError{Path: path, Msg: fmt.Sprintf("larger than %d MiB", MaxKeyfileSize>>20),
			Hint: "a keyfile holds keys and settings; check that this is the right file"}
	}
	return data, nil
}

func checkPrivate(path string, fi os.FileInfo, pf privateFile) error {
	if !fi.Mode().IsRegular() {
		return &PathError{Path: path, Problem: "is not a regular file", Hint: pf.notRegular, Keyfile: pf.keyfile}
	}
	if uid, ok := ownerUID(fi); ok && uid != os.Getuid() {
		return &PathError{Path: path, Problem: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", uid, os.Getuid()),
			Hint:    fmt.Sprintf("a %s must belong to the user who runs llmkey: chown %d %s", pf.what, os.Getuid(), shellQuote(path)),
			Keyfile: pf.keyfile}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return &PathError{Path: path, Problem: fmt.Sprintf("is readable or writable by others (mode %04o); it holds secrets", perm),
			Hint: "chmod 600 " + shellQuote(path), Keyfile: pf.keyfile}
	}
	return nil
}

// Parse decodes and validates keyfile contents. path is only used in
// messages.
func Parse(path string, data []byte) (*Config, error) {
	cfg, lay, err := decode(path, data)
	if err != nil {
		return nil, err
	}
	if err := validate(cfg, lay); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadAsWritten reads the keyfile as Load does but keeps a keyfile that
// decodes and fails validation: it returns the keys as written with the
// validation error, so that list can show them and say what is wrong.
// Syntax, type and permission errors come back with no Config.
func LoadAsWritten(path string) (*Config, error) {
	data, err := ReadPrivate(path)
	if err != nil {
		return nil, err
	}
	cfg, lay, err := decode(path, data)
	if err != nil {
		return nil, err
	}
	return cfg, validate(cfg, lay)
}

// decode turns bytes into a Config without semantic checks (but with
// syntax, type and unknown-field checks). rm uses it directly so that a
// person can remove the very key that makes the file invalid.
func decode(path string, data []byte) (*Config, *layout, error) {
	lay := scanLayout(data)
	var raw fileTOML
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, lay, tomlError(path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, lay, unknownField(path, lay, und[0])
	}
	// The decoder matches field names regardless of case; TOML does not,
	// and neither do we: "Secret" is a typo, not an alias.
	for _, k := range md.Keys() {
		if known, ok := knownFields[k[0]]; ok && len(k) == fieldDepth[k[0]] && !slices.Contains(known, k[len(k)-1]) {
			return nil, lay, unknownField(path, lay, k)
		}
	}
	cfg := &Config{Path: path, Keys: raw.Key, Daemon: raw.Daemon, Providers: raw.Provider, Groups: raw.Group, Pricing: raw.Pricing}
	if blocks := lay.keyBlocks(); len(blocks) == len(cfg.Keys) {
		for _, b := range blocks {
			cfg.keyLines = append(cfg.keyLines, b.header+1)
		}
	}
	return cfg, lay, nil
}

var lineInMsg = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^toml: line (\d+)(?: \(last key "([^"]*)"\))?: `) })

func tomlError(path string, err error) error {
	e := &KeyfileError{Path: path, Msg: strings.TrimPrefix(err.Error(), "toml: "),
		Hint: "fix the TOML syntax on that line (strings need \"quotes\"; see 'llmkey man' for the format)"}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Line, e.Field, e.Msg = pe.Position.Line, pe.LastKey, pe.Message
	}
	// Type errors come as plain errors with the line and key in the text.
	if m := lineInMsg().FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Field = m[2]
		e.Msg = err.Error()[len(m[0]):]
	}
	if strings.Contains(e.Msg, "incompatible types") {
		e.Hint = "give the field a value of the right type: numbers bare (rpm = 60), text in quotes, models as [\"a\", \"b\"]"
	}
	return e
}

// The keyfile's tables are fileTOML's fields, and each table's fields are
// the toml names of its struct's: knownFields and fieldDepth are read from
// them, so that a setting added to a struct is known without another list.
var tableNames, knownFields, fieldDepth = func() ([]string, map[string][]string, map[string]int) {
	var names []string
	known, depth := map[string][]string{}, map[string]int{}
	ft := reflect.TypeFor[fileTOML]()
	for i := range ft.NumField() {
		f := ft.Field(i)
		name, t := fieldName(f), f.Type
		// How deep a field sits: key.NAME and daemon.NAME; provider.P.NAME
		// in a table of tables.
		depth[name] = 2
		switch t.Kind() {
		case reflect.Slice:
			t = t.Elem()
		case reflect.Map:
			t, depth[name] = t.Elem(), 3
		}
		for j := range t.NumField() {
			known[name] = append(known[name], fieldName(t.Field(j)))
		}
		names = append(names, name)
	}
	return names, known, depth
}()

func unknownField(path string, lay *layout, k toml.Key) error {
	e := &KeyfileError{Path: path, Field: k.String(), Msg: "unknown field"}
	if len(k) == 1 {
		e.Msg = "unknown table or field"
		e.Hint = "the keyfile has [[key]] tables and optional [daemon], [provider.NAME], [group.NAME] and [pricing.\"MODEL\"] tables"
		if ln, ok := lay.sections[0].keys[k[0]]; ok {
			e.Line = ln + 1
		} else {
			for _, s := range lay.sections {
				if len(s.name) > 0 && s.name[0] == k[0] {
					e.Line = s.header + 1
					break
				}
			}
		}
		return e
	}
	table := k[0]
	fieldName := k[len(k)-1]
	known := knownFields[table]
	e.Hint = "known fields here: " + strings.Join(known, ", ")
	if s := closest(fieldName, known); s != "" || slices.Contains(known, strings.ToLower(fieldName)) {
		if s == "" {
			s = strings.ToLower(fieldName)
		}
		e.Hint = fmt.Sprintf("did you mean %q? known fields here: %s", s, strings.Join(known, ", "))
	}
	for _, s := range lay.sections {
		if len(s.name) > 0 && s.name[0] == table {
			if ln, ok := s.keys[fieldName]; ok {
				e.Line = ln + 1
				break
			}
		}
	}
	return e
}

var (
	nameRe     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })
	providerRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`) })
)

// ValidName reports whether s can name a key.
func ValidName(s string) bool { return nameRe().MatchString(s) }

// SuggestProvider returns the known provider name closest to a misspelt
// one, or "".
func (c *Config) SuggestProvider(name string) string {
	names := BuiltinNames()
	for n := range c.Providers {
		names = append(names, n)
	}
	return closest(name, names)
}

// LooksLikeSecret reports whether s has the shape of an API key: a known
// public prefix and key-like length. The CLI uses it to refuse a secret
// typed where a name belongs, before it can land in a file or a message.
func LooksLikeSecret(s string) bool {
	if len(s) < 20 {
		return false
	}
	for _, p := range publicPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return len(s) >= 32 && !strings.ContainsAny(s, ".")
}

// Closest is the candidate within edit distance 2 of s, for a "did you
// mean"; "" when none is that close.
func Closest(s string, candidates []string) string { return closest(s, candidates) }

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		// At most two edits, no more than half the word's letters, and
		// the same first letter: "mv" is not a misspelt "ls", nor "remov"
		// one of "demo".
		if d := editDistance(s, c); d < bestD && d > 0 && 2*d <= len(s) && sameFirst(s, c) {
			best, bestD = c, d
		}
	}
	return best
}

// sameFirst reports whether a and b begin with the same letter, in
// either case.
func sameFirst(a, b string) bool {
	return a != "" && b != "" && strings.EqualFold(a[:1], b[:1])
}

// editDistance counts the edits that turn a into b: a letter inserted,
// removed or changed, or two neighbours swapped ("rmp" is one from
// "rpm").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// shellQuote quotes a path for a hint the user may paste into a shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
