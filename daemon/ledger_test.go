package daemon

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/llmkey/llmkey/rotate"
	"github.com/llmkey/llmkey/state"
)

func TestStreamUsageIsAskedForOnlyWhenUnsaid(t *testing.T) {
	tests := []struct {
		kind       state.Kind
		path, body string
		want       bool
	}{
		{state.KindOpenAI, "/chat/completions", `{"model":"m","stream":true}`, true},
		{state.KindOpenAI, "/v1/chat/completions/", `{"model":"m","stream":true,"stream_options":null}`, true},
		{state.KindOpenAI, "/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":false}}`, false},
		{state.KindOpenAI, "/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, false},
		{state.KindOpenAI, "/chat/completions", `{"model":"m"}`, false},
		{state.KindOpenAI, "/responses", `{"model":"m","stream":true}`, false},
		{state.KindAnthropic, "/v1/messages", `{"model":"m","stream":true}`, false},
	}
	for _, tt := range tests {
		info := inspect(tt.kind, tt.path, []byte(tt.body))
		if info.model != "m" || info.wantsUsage != tt.want {
			t.Errorf("%s %s %s: model %q, wants usage %v; want %v", tt.kind, tt.path, tt.body, info.model, info.wantsUsage, tt.want)
		}
	}
	if m := inspect(state.KindGemini, "/v1beta/models/gemini-2.5-pro:streamGenerateContent", nil).model; m != "gemini-2.5-pro" {
		t.Errorf("gemini model from the path: %q", m)
	}
	for body, model := range map[string]string{
		`{"messages":[{"role":"user","content":"\"model\": \"x\" } {"}],"model" : "gpt-4o"}`: "gpt-4o",
		`{"model":"caf\u00e9","stream":false}`:                                               "café",
		`{"model":"a","model":"b"}`:                                                          "b", // as encoding/json: the last
		`{"model":"a"`:                                                                       "",
		`["model"]`:                                                                          "",
		`{"model":"a","x":[1,{"y":"]"}],"z":nul`:                                             "",
	} {
		if got := inspect(state.KindOpenAI, "/chat/completions", []byte(body)).model; got != model {
			t.Errorf("model of %s: %q, want %q", body, got, model)
		}
	}

	for _, body := range []string{
		`{"model":"m","stream":true,"messages":[{"role":"user","content":"{"}]}`,
		` {"model":"m","stream":true,"stream_options":null}`,
		`{"model":"m","stream":true,"stream_options":{"other":1}}`,
		`{"model":"m","stream":true,"stream_options":{ }}`,
	} {
		info := inspect(state.KindOpenAI, "/chat/completions", []byte(body))
		if !info.wantsUsage {
			t.Fatalf("%s: usage not wanted", body)
		}
		out := withStreamUsage([]byte(body), info)
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s became invalid JSON: %s", body, out)
		}
		opts, _ := v["stream_options"].(map[string]any)
		if opts["include_usage"] != true || v["model"] != "m" || v["stream"] != true {
			t.Errorf("%s became %s", body, out)
		}
		if strings.Contains(body, "other") && opts["other"] != float64(1) {
			t.Errorf("the client's own stream_options were lost: %s", out)
		}
		if strings.Contains(body, "messages") && !bytes.HasSuffix(out, []byte(body[1:])) {
			t.Errorf("the rest of the body changed: %s", out)
		}
	}
}

func TestLedgerCountsAndSnapshots(t *testing.T) {
	l := newLedger([]state.UsageRow{{UsageKey: state.UsageKey{Day: "2026-11-24", Provider: "openai", Key: "a", Fingerprint: "f", Model: "m"},
		Counts: state.Counts{Requests: 2, Successes: 2, Input: 10}}})
	if l.generation() != 0 {
		t.Error("a loaded ledger is not a change")
	}
	k := state.UsageKey{Provider: "openai", Key: "a", Fingerprint: "f", Model: "m"} // the day comes from the time
	l.add(time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC), k, state.Counts{Requests: 1, Failures: map[string]int64{"rate-limited": 1}})
	l.add(time.Date(2026, 11, 24, 23, 59, 0, 0, time.UTC), k, state.Counts{Requests: 1, Successes: 1, Input: 5, Output: 3, CacheWrite: 2})
	rows, gen := l.snapshot()
	if gen != 2 || len(rows) != 1 || rows[0].Requests != 4 || rows[0].Input != 15 || rows[0].Failures["rate-limited"] != 1 {
		t.Fatalf("rows %+v gen %d", rows, gen)
	}
	rows[0].Failures["rate-limited"] = 99 // a copy
	if again, _ := l.snapshot(); again[0].Failures["rate-limited"] != 1 {
		t.Error("a snapshot shares its maps with the ledger")
	}
	rows, _ = l.snapshot()
	today := state.KeyDay(rows, "2026-11-24")[state.UsageKey{Provider: "openai", Key: "a", Fingerprint: "f"}]
	if today.Requests != 4 || today.Tokens() != 20 {
		t.Errorf("today: %+v", today)
	}
	// The next UTC day is a row of its own.
	l.add(time.Date(2026, 11, 25, 0, 0, 1, 0, time.UTC), k, state.Counts{Requests: 1})
	if rows, _ := l.snapshot(); len(rows) != 2 {
		t.Errorf("after midnight UTC: %+v", rows)
	}
}

// The log never blocks a request: with the file unwritable (its directory
// is a file), writes return at once; once the path is usable again, the
// file comes back.
func TestLogFileNeverBlocksAndComesBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	os.WriteFile(dir, []byte("a file where the dir should be"), 0o600)
	lf := OpenLogFile(filepath.Join(dir, "daemon.log"))
	defer lf.Close()
	start := time.Now()
	for range 3 * logQueue {
		lf.Write([]byte("a line that cannot be written\n"))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("%d writes took %v with the disk refusing them", 3*logQueue, d)
	}
	if lf.Dropped() == 0 {
		t.Error("no line counted as dropped")
	}
	logPath := filepath.Join(dir, "daemon.log")
	os.Remove(dir)
	waitForLine(t, lf, logPath, "back")
	// Removed while open: written to anew, not into the unlinked file.
	os.RemoveAll(dir)
	waitForLine(t, lf, logPath, "again")
}

// waitForLine writes line to lf until it shows in the file at path.
func waitForLine(t *testing.T, lf *LogFile, path, line string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lf.Write([]byte(line + "\n"))
		if b, _ := os.ReadFile(path); strings.Contains(string(b), line) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never reached %s", line, path)
		}
	}
}

// The scanner agrees with encoding/json on the model, and adding usage to
// a valid body keeps it valid.
func FuzzInspect(f *testing.F) {
	for _, s := range []string{`{"model":"m","stream":true}`, `{"stream":true,"model":"a\"b","stream_options":{"x":[1,"}"]}}`,
		`{"model":"m","stream":true,"stream_options":null,"messages":[{"content":"{\"model\":1}"}]}`, ` { "model" : "m" , "stream" : true } `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		info := inspect(state.KindOpenAI, "/chat/completions", []byte(body))
		var top map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &top) != nil {
			return
		}
		var want string
		if raw, ok := top["model"]; ok && json.Unmarshal(raw, &want) == nil && info.model != want {
			t.Errorf("model of %s: %q, encoding/json says %q", body, info.model, want)
		}
		if info.wantsUsage {
			// Keys compared exactly, as the providers do (encoding/json
			// into a struct would not).
			out := withStreamUsage([]byte(body), info)
			var after, opts map[string]json.RawMessage
			err := json.Unmarshal(out, &after)
			if err == nil {
				err = json.Unmarshal(after["stream_options"], &opts)
			}
			if err != nil || string(opts["include_usage"]) != "true" {
				t.Errorf("%s became %s (%v)", body, out, err)
			}
		}
	})
}

// A model name from a client keys usage rows and metric labels: it comes
// out valid UTF-8 and of a name's length, and /metrics still gathers.
func TestModelNameFitForLabels(t *testing.T) {
	body := []byte("{\"model\":\"gpt-\xff\xfe" + strings.Repeat("é", 150) + "\"}")
	m := inspect(state.KindOpenAI, "/chat/completions", body).model
	if !utf8.ValidString(m) || len(m) > maxModelName+3 || !strings.HasPrefix(m, "gpt-") {
		t.Fatalf("model %q (%d bytes)", m, len(m))
	}
	d := newDaemon(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	d.publish(&state.Config{})
	d.record(&upstream{Provider: state.Provider{Name: "openai"}}, upKey{Key: state.Key{Name: "a"}}, m, state.Counts{Requests: 1, Successes: 1})
	if _, err := d.metrics.reg.Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

// The cooldown metric's help puts each class where rotation puts its key:
// a 403 cools a key (for that model), it does not park it.
func TestCooldownHelpMatchesRotation(t *testing.T) {
	d, _ := newTestProxy(t, http.NotFoundHandler())
	d.metrics.cooldowns.WithLabelValues("openai", "a", "forbidden").Inc()
	fams, err := d.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	help := ""
	for _, f := range fams {
		if f.GetName() == "llmkey_cooldown_events_total" {
			help = f.GetHelp()
		}
	}
	cooled, parked, ok := strings.Cut(help, ") or parked (")
	if !ok {
		t.Fatalf("help %q does not say what is cooled and what parked", help)
	}
	for _, c := range rotate.Classes() {
		inCooled, inParked := strings.Contains(cooled, c.String()), strings.Contains(parked, c.String())
		switch c.SetsAside() {
		case "cools":
			if !inCooled || inParked {
				t.Errorf("%s cools a key; help says: %s", c, help)
			}
		case "parks":
			if inCooled || !inParked {
				t.Errorf("%s parks a key; help says: %s", c, help)
			}
		}
	}
}
