package metrics

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// This file holds the few Prometheus primitives Gatehouse needs: labelled
// counters and histograms and the text exposition format (version 0.0.4).
// They replace prometheus/client_golang, whose package init (its default
// registry with the Go and process collectors, procfs, protobuf, YAML)
// was a third of Gatehouse's package init at start-up.

// label is one label of a series.
type label struct{ name, value string }

// sample is one line of the exposition: the family name plus suffix
// ("_bucket", "_sum", "_count" or ""), its labels and value.
type sample struct {
	suffix string
	labels []label
	value  float64
}

// family is one metric family: its samples under one HELP and TYPE.
type family struct {
	name, help, typ string
	samples         []sample
}

// counter is a monotonically increasing count. Gatehouse counts whole
// things (requests, bytes, starts), so it is an integer.
type counter struct{ n atomic.Uint64 }

// Inc adds one.
func (c *counter) Inc() { c.n.Add(1) }

// Add adds n.
func (c *counter) Add(n uint64) { c.n.Add(n) }

// Value returns the count.
func (c *counter) Value() uint64 { return c.n.Load() }

func (c *counter) appendSamples(out []sample, labels []label) []sample {
	return append(out, sample{labels: labels, value: float64(c.Value())})
}

// histogram counts observations into buckets with fixed upper bounds.
type histogram struct {
	upper  []float64       // the buckets' upper bounds, ascending; shared
	counts []atomic.Uint64 // per bucket (not cumulative); the last is +Inf
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(upper []float64) *histogram {
	return &histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
}

// Observe records v in the first bucket whose upper bound is at least v.
func (h *histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.upper, v)
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// appendSamples writes the cumulative buckets, the sum and the count
// (the +Inf bucket's), with le last in each bucket's labels, as
// Prometheus' client does.
func (h *histogram) appendSamples(out []sample, labels []label) []sample {
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		le := "+Inf"
		if i < len(h.upper) {
			le = formatFloat(h.upper[i])
		}
		out = append(out, sample{suffix: "_bucket", labels: append(slices.Clip(labels), label{"le", le}), value: float64(cum)})
	}
	sum := math.Float64frombits(h.sum.Load())
	return append(out, sample{suffix: "_sum", labels: labels, value: sum},
		sample{suffix: "_count", labels: labels, value: float64(cum)})
}

// series is what a vec holds per label values.
type series interface {
	appendSamples(out []sample, labels []label) []sample
}

// vec is a family of series of one kind, keyed by their label values.
type vec[S series] struct {
	name, help, typ string
	labelNames      []string // in the order With takes the values
	newSeries       func() S

	mu sync.RWMutex // protects m
	m  map[string]*vecEntry[S]
}

type vecEntry[S series] struct {
	values []string // in labelNames' order
	labels []label  // sorted by name, for the exposition
	s      S
}

func newVec[S series](name, help, typ string, labelNames []string, newSeries func() S) *vec[S] {
	return &vec[S]{name: name, help: help, typ: typ, labelNames: labelNames, newSeries: newSeries, m: map[string]*vecEntry[S]{}}
}

func newCounterVec(name, help string, labelNames ...string) *vec[*counter] {
	return newVec(name, help, "counter", labelNames, func() *counter { return new(counter) })
}

func newHistogramVec(name, help string, upper []float64, labelNames ...string) *vec[*histogram] {
	return newVec(name, help, "histogram", labelNames, func() *histogram { return newHistogram(upper) })
}

// With returns the series with these label values (one per label name, in
// order), creating it on first use.
func (v *vec[S]) With(values ...string) S {
	if len(values) != len(v.labelNames) {
		panic("metrics: " + v.name + " takes " + strconv.Itoa(len(v.labelNames)) + " label values")
	}
	key := strings.Join(values, "\xff")
	v.mu.RLock()
	e := v.m[key]
	v.mu.RUnlock()
	if e != nil {
		return e.s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := v.m[key]; e != nil {
		return e.s
	}
	e = &vecEntry[S]{values: slices.Clone(values), s: v.newSeries()}
	for i, n := range v.labelNames {
		e.labels = append(e.labels, label{n, values[i]})
	}
	slices.SortFunc(e.labels, func(a, b label) int { return strings.Compare(a.name, b.name) })
	v.m[key] = e
	return e.s
}

// DeleteMatching removes every series whose label name has the given
// value for each pair of match (name, value, name, value, …).
func (v *vec[S]) DeleteMatching(match ...string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for key, e := range v.m {
		if v.matches(e, match) {
			delete(v.m, key)
		}
	}
}

func (v *vec[S]) matches(e *vecEntry[S], match []string) bool {
	for i := 0; i+1 < len(match); i += 2 {
		j := slices.Index(v.labelNames, match[i])
		if j < 0 || e.values[j] != match[i+1] {
			return false
		}
	}
	return true
}

// family returns the vec's samples, its series ordered by label values.
func (v *vec[S]) family() family {
	v.mu.RLock()
	entries := make([]*vecEntry[S], 0, len(v.m))
	for _, e := range v.m {
		entries = append(entries, e)
	}
	v.mu.RUnlock()
	slices.SortFunc(entries, func(a, b *vecEntry[S]) int { return compareLabels(a.labels, b.labels) })
	f := family{name: v.name, help: v.help, typ: v.typ}
	for _, e := range entries {
		f.samples = e.s.appendSamples(f.samples, e.labels)
	}
	return f
}

func compareLabels(a, b []label) int {
	for i := range min(len(a), len(b)) {
		if c := cmp.Or(strings.Compare(a[i].name, b[i].name), strings.Compare(a[i].value, b[i].value)); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// gaugeFamily builds a family of gauges (or counters read elsewhere,
// with typ "counter") from values read at scrape time.
type gaugeFamily struct{ family }

func newGaugeFamily(name, help, typ string) *gaugeFamily {
	return &gaugeFamily{family{name: name, help: help, typ: typ}}
}

// add appends one series: labelPairs is name, value, name, value, ….
func (g *gaugeFamily) add(value float64, labelPairs ...string) {
	var ls []label
	for i := 0; i+1 < len(labelPairs); i += 2 {
		ls = append(ls, label{labelPairs[i], labelPairs[i+1]})
	}
	slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
	g.samples = append(g.samples, sample{labels: ls, value: value})
}

// writeText writes families in the text exposition format, sorted by
// name, each series' samples in order; families without samples are left
// out.
func writeText(b *bytes.Buffer, fams []family) {
	slices.SortStableFunc(fams, func(a, b family) int { return strings.Compare(a.name, b.name) })
	for _, f := range fams {
		if len(f.samples) == 0 {
			continue
		}
		b.WriteString("# HELP ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		escape(b, f.help, false)
		b.WriteString("\n# TYPE ")
		b.WriteString(f.name)
		b.WriteByte(' ')
		b.WriteString(f.typ)
		b.WriteByte('\n')
		for _, s := range f.samples {
			b.WriteString(f.name)
			b.WriteString(s.suffix)
			if len(s.labels) > 0 {
				b.WriteByte('{')
				for i, l := range s.labels {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString(l.name)
					b.WriteString(`="`)
					escape(b, l.value, true)
					b.WriteByte('"')
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatFloat(s.value))
			b.WriteByte('\n')
		}
	}
}

// escape writes s with backslash and newline escaped, and double quotes
// too in a label value.
func escape(b *bytes.Buffer, s string, quote bool) {
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '"' && quote:
			b.WriteString(`\"`)
		default:
			b.WriteRune(r)
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

// serveText answers a scrape with fams, gzipped when the scraper accepts
// it (as Prometheus does).
func serveText(w http.ResponseWriter, r *http.Request, fams []family) {
	var b bytes.Buffer
	writeText(&b, fams)
	h := w.Header()
	h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Write(b.Bytes())
		return
	}
	h.Set("Content-Encoding", "gzip")
	zw := gzip.NewWriter(w)
	zw.Write(b.Bytes())
	zw.Close()
}

// acceptsGzip reports whether an Accept-Encoding value lists gzip with a
// quality above zero.
func acceptsGzip(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		f, err := strconv.ParseFloat(q, 64)
		return err == nil && f > 0
	}
	return false
}
