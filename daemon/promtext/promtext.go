// SPDX-License-Identifier: MIT

// Package promtext keeps counters, histograms and scrape-time gauges, and
// writes them in the Prometheus text exposition format (version 0.0.4).
//
// It stands in for the official client because that client's package
// initialisation (its default registry with Go and process collectors,
// procfs, protobuf descriptors) costs about a millisecond and a half on
// every start of the llmkey binary, which is also every "llmkey exec".
// The format it writes is small and stable; the tests read it back with
// the official parser (github.com/prometheus/common/expfmt).
package promtext

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Type is a family's TYPE.
type Type string

const (
	CounterType   Type = "counter"
	GaugeType     Type = "gauge"
	HistogramType Type = "histogram"
)

// Registry is a set of families, written in name order.
type Registry struct {
	mu     sync.Mutex
	fams   []family
	before []func()
	scrape sync.Mutex // one scrape at a time: what before reads is the scrape's own
}

// BeforeScrape runs f at the start of every scrape, before any family is
// read, one scrape at a time (to read once what several families show).
func (r *Registry) BeforeScrape(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.before = append(r.before, f)
}

type family interface {
	meta() *head
	// samples calls emit once a line: its suffix (_bucket, _sum, _count
	// of a histogram), its label values in the family's order, and a
	// bucket's upper bound ("" for other lines).
	samples(emit func(suffix string, values []string, le string, v float64))
}

func (r *Registry) add(f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := f.meta().name
	for _, g := range r.fams {
		if g.meta().name == name {
			panic("promtext: " + name + " registered twice")
		}
	}
	r.fams = append(r.fams, f)
}

// Counter is one counter without labels.
func (r *Registry) Counter(name, help string) *Counter {
	v := r.CounterVec(name, help)
	return v.With()
}

// CounterVec is a counter family with labels.
func (r *Registry) CounterVec(name, help string, labels ...string) *CounterVec {
	v := &CounterVec{head: head{name, help, CounterType, labels}}
	r.add(v)
	return v
}

// HistogramVec is a histogram family with labels; buckets are the upper
// bounds, ascending (+Inf is added).
func (r *Registry) HistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	if !slices.IsSorted(buckets) {
		panic("promtext: " + name + " buckets not ascending")
	}
	v := &HistogramVec{head: head{name, help, HistogramType, labels}, buckets: buckets}
	r.add(v)
	return v
}

// Func is a family read at scrape time: collect calls emit once a series.
func (r *Registry) Func(name, help string, typ Type, labels []string, collect func(emit func(v float64, labelValues ...string))) {
	r.add(&funcFamily{head: head{name, help, typ, labels}, collect: collect})
}

// WriteTo writes every family in the text format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.scrape.Lock()
	defer r.scrape.Unlock()
	r.mu.Lock()
	fams, before := slices.Clone(r.fams), slices.Clone(r.before)
	r.mu.Unlock()
	for _, f := range before {
		f()
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i].meta().name < fams[j].meta().name })
	var b bytes.Buffer
	type sample struct {
		suffix, le string
		values     []string
		v          float64
	}
	var ss []sample
	for _, f := range fams {
		h := f.meta()
		ss = ss[:0]
		f.samples(func(suffix string, values []string, le string, v float64) {
			ss = append(ss, sample{suffix, le, values, v})
		})
		if len(ss) == 0 {
			continue
		}
		b.WriteString("# HELP " + h.name + " ")
		writeEscaped(&b, h.help, false)
		b.WriteString("\n# TYPE " + h.name + " " + string(h.typ) + "\n")
		// Series in label order; a histogram's lines stay together and
		// in order, since the sort is stable.
		sort.SliceStable(ss, func(i, j int) bool { return slices.Compare(ss[i].values, ss[j].values) < 0 })
		for _, s := range ss {
			b.WriteString(h.name + s.suffix)
			if len(h.labels) > 0 || s.le != "" {
				b.WriteByte('{')
				for i, l := range h.labels {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString(l + `="`)
					writeEscaped(&b, strings.ToValidUTF8(s.values[i], "\uFFFD"), true)
					b.WriteByte('"')
				}
				if s.le != "" {
					if len(h.labels) > 0 {
						b.WriteByte(',')
					}
					b.WriteString(`le="` + s.le + `"`)
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatFloat(s.v))
			b.WriteByte('\n')
		}
	}
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// ContentType is the text format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the registry.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		r.WriteTo(w)
	})
}

type head struct {
	name, help string
	typ        Type
	labels     []string
}

func (h *head) meta() *head { return h }

// series is a map from label values to one series, made on first use.
type series[T any] struct {
	mu sync.RWMutex
	m  map[string]*entry[T]
}

type entry[T any] struct {
	values []string
	v      *T
}

func (s *series[T]) get(labels, values []string, make func() *T) *T {
	if len(values) != len(labels) {
		panic("promtext: " + strconv.Itoa(len(values)) + " label values for " + strconv.Itoa(len(labels)) + " labels")
	}
	key := strings.Join(values, "\xff")
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e != nil {
		return e.v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.m[key]; e == nil {
		if s.m == nil {
			s.m = map[string]*entry[T]{}
		}
		e = &entry[T]{values: slices.Clone(values), v: make()}
		s.m[key] = e
	}
	return e.v
}

func (s *series[T]) each(f func(values []string, v *T)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.m {
		f(e.values, e.v)
	}
}

// CounterVec is a family of counters by label values.
type CounterVec struct {
	head
	s series[Counter]
}

// With is the counter for these label values, in the family's order.
func (v *CounterVec) With(values ...string) *Counter {
	return v.s.get(v.labels, values, func() *Counter { return new(Counter) })
}

func (v *CounterVec) samples(emit func(string, []string, string, float64)) {
	v.s.each(func(values []string, c *Counter) { emit("", values, "", float64(c.Value())) })
}

// Counter counts up.
type Counter struct{ n atomic.Uint64 }

func (c *Counter) Inc()          { c.n.Add(1) }
func (c *Counter) Value() uint64 { return c.n.Load() }

// HistogramVec is a family of histograms by label values.
type HistogramVec struct {
	head
	buckets []float64
	s       series[Histogram]
}

// With is the histogram for these label values.
func (v *HistogramVec) With(values ...string) *Histogram {
	return v.s.get(v.labels, values, func() *Histogram {
		return &Histogram{upper: v.buckets, counts: make([]atomic.Uint64, len(v.buckets)+1)}
	})
}

func (v *HistogramVec) samples(emit func(string, []string, string, float64)) {
	v.s.each(func(values []string, h *Histogram) {
		var cum uint64
		for i := range h.counts {
			cum += h.counts[i].Load()
			le := "+Inf"
			if i < len(h.upper) {
				le = formatFloat(h.upper[i])
			}
			emit("_bucket", values, le, float64(cum))
		}
		emit("_sum", values, "", math.Float64frombits(h.sum.Load()))
		emit("_count", values, "", float64(cum))
	})
}

// Histogram counts observations into buckets. Its count is the sum of
// its buckets, so a scrape never sees them disagree by more than the
// observations made while it reads.
type Histogram struct {
	upper  []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Uint64   // float64 bits
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	h.counts[sort.SearchFloat64s(h.upper, v)].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

type funcFamily struct {
	head
	collect func(emit func(v float64, labelValues ...string))
}

func (f *funcFamily) samples(emit func(string, []string, string, float64)) {
	f.collect(func(v float64, values ...string) {
		if len(values) != len(f.labels) {
			panic("promtext: " + f.name + ": wrong number of label values")
		}
		emit("", slices.Clone(values), "", v)
	})
}

// writeEscaped writes s escaped as the format wants: backslash and
// newline always, the double quote inside label values.
func writeEscaped(b *bytes.Buffer, s string, quote bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
