// SPDX-License-Identifier: MIT

package promtext

import (
	"bytes"
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func parse(t *testing.T, r *Registry) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("the official parser refuses it: %v\n%s", err, text)
	}
	return fams, text
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// What is written reads back, through the official parser, as the same
// families, types, help, labels and values, whatever the label values
// and help hold.
func TestWrittenTextReadsBack(t *testing.T) {
	r := &Registry{}
	c := r.Counter("t_plain_total", `help with a \ backslash`+"\nand a newline")
	vec := r.CounterVec("t_by_total", "by label", "a", "b")
	h := r.HistogramVec("t_latency_seconds", "latency", []float64{0.1, 1, 10}, "p")
	r.Func("t_live", "read at scrape time", GaugeType, []string{"k"}, func(emit func(float64, ...string)) {
		emit(2.5, "x")
		emit(math.Inf(1), "inf")
	})
	r.Func("t_empty", "nothing yet", GaugeType, nil, func(func(float64, ...string)) {})

	c.Inc()
	c.Inc()
	odd := "quote \" backslash \\ newline \n bad \xff end"
	vec.With("1", odd).Inc()
	for range 3 {
		vec.With("2", "y").Inc()
	}
	for _, v := range []float64{0.05, 0.1, 0.5, 1, 20} {
		h.With("openai").Observe(v)
	}

	fams, text := parse(t, r)
	if fams["t_empty"] != nil || strings.Contains(text, "t_empty") {
		t.Errorf("a family with no series is written:\n%s", text)
	}
	if f := fams["t_plain_total"]; f.GetType() != dto.MetricType_COUNTER || f.GetHelp() != `help with a \ backslash`+"\nand a newline" ||
		f.GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Errorf("plain counter: %v", f)
	}
	got := map[string]float64{}
	for _, m := range fams["t_by_total"].GetMetric() {
		l := labelsOf(m)
		got[l["a"]+"|"+l["b"]] = m.GetCounter().GetValue()
	}
	if want := strings.ToValidUTF8(odd, "\uFFFD"); got["1|"+want] != 1 || got["2|y"] != 3 || len(got) != 2 {
		t.Errorf("counter vec: %v", got)
	}
	hist := fams["t_latency_seconds"]
	if hist.GetType() != dto.MetricType_HISTOGRAM || len(hist.GetMetric()) != 1 {
		t.Fatalf("histogram: %v", hist)
	}
	hm := hist.GetMetric()[0].GetHistogram()
	if hm.GetSampleCount() != 5 || math.Abs(hm.GetSampleSum()-21.65) > 1e-9 {
		t.Errorf("count %d sum %v", hm.GetSampleCount(), hm.GetSampleSum())
	}
	// le is an upper bound, inclusive: 0.1 is in the 0.1 bucket.
	wantCum := map[float64]uint64{0.1: 2, 1: 4, 10: 4}
	for _, b := range hm.GetBucket() {
		if w, ok := wantCum[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	if !strings.Contains(text, `t_latency_seconds_bucket{p="openai",le="+Inf"} 5`) {
		t.Errorf("no +Inf bucket:\n%s", text)
	}
	live := map[string]float64{}
	for _, m := range fams["t_live"].GetMetric() {
		live[labelsOf(m)["k"]] = m.GetGauge().GetValue()
	}
	if live["x"] != 2.5 || !math.IsInf(live["inf"], 1) {
		t.Errorf("func family: %v", live)
	}
	// Families in name order, series in label order: the same text twice.
	if _, again := parse(t, r); again != text {
		t.Errorf("two scrapes differ:\n%s\n--\n%s", text, again)
	}
	if strings.Index(text, "t_by_total") > strings.Index(text, "t_latency_seconds") ||
		strings.Index(text, `a="1"`) > strings.Index(text, `a="2"`) {
		t.Errorf("not in order:\n%s", text)
	}
}

// Counting from many goroutines loses nothing, and a scrape meanwhile is
// safe (go test -race).
func TestCountingConcurrently(t *testing.T) {
	r := &Registry{}
	vec := r.CounterVec("t_total", "t", "k")
	h := r.HistogramVec("t_seconds", "t", []float64{1}, "k")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				vec.With([]string{"a", "b"}[i%2]).Inc()
				h.With("a").Observe(float64(g))
			}
		}()
	}
	for range 5 {
		parse(t, r)
	}
	wg.Wait()
	if a, b := vec.With("a").Value(), vec.With("b").Value(); a != 4000 || b != 4000 {
		t.Errorf("a %d b %d", a, b)
	}
	fams, _ := parse(t, r)
	hm := fams["t_seconds"].GetMetric()[0].GetHistogram()
	if hm.GetSampleCount() != 8000 || hm.GetSampleSum() != 28000 {
		t.Errorf("histogram count %d sum %v", hm.GetSampleCount(), hm.GetSampleSum())
	}
}

func TestHandlerAndMisuse(t *testing.T) {
	r := &Registry{}
	r.Counter("t_total", "t").Inc()
	reads := 0
	r.BeforeScrape(func() { reads++ })
	w := httptest.NewRecorder()
	r.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if ct := w.Header().Get("Content-Type"); ct != ContentType || !strings.Contains(w.Body.String(), "t_total 1\n") || reads != 1 {
		t.Errorf("%q %q reads=%d", ct, w.Body.String(), reads)
	}
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", what)
			}
		}()
		f()
	}
	mustPanic("a name twice", func() { r.Counter("t_total", "again") })
	mustPanic("wrong label count", func() { r.CounterVec("t2_total", "t", "a").With("x", "y") })
	mustPanic("unsorted buckets", func() { r.HistogramVec("t3", "t", []float64{2, 1}) })
}

func BenchmarkObserve(b *testing.B) {
	h := (&Registry{}).HistogramVec("t_seconds", "t", []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}, "p").With("openai")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(0.2)
		}
	})
}

func BenchmarkCounterWith(b *testing.B) {
	v := (&Registry{}).CounterVec("t_total", "t", "provider")
	b.ReportAllocs()
	for b.Loop() {
		v.With("openai").Inc()
	}
}
