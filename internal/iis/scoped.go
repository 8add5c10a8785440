package iis

import (
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// Scoped picks, for each request, the stage of the longest <location
// path> that holds the request's path (relative to the app, decoded,
// segment-wise and without case, as IIS matches locations), else the
// app's own. A nil stage does nothing there. It is immutable.
type Scoped[S comparable] struct {
	root   S
	paths  []string // longest first
	stages []S
}

// NewScoped returns the picker of root and the stages of paths (relative
// to the app, without leading or trailing slash; stages[i] is paths[i]'s).
func NewScoped[S comparable](root S, paths []string, stages []S) *Scoped[S] {
	s := &Scoped[S]{root: root, paths: append([]string(nil), paths...), stages: append([]S(nil), stages...)}
	idx := make([]int, len(paths))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return len(paths[idx[a]]) > len(paths[idx[b]]) })
	for i, j := range idx {
		s.paths[i], s.stages[i] = paths[j], stages[j]
	}
	return s
}

// For returns the stage for r: that of the longest location holding its
// path, else root. r may be nil (root).
func (s *Scoped[S]) For(r *pipeline.Request) S {
	if r == nil {
		return s.root
	}
	rel := strings.TrimPrefix(appRelative(pipeline.DecodePath(r.Path), r.AppPath), "/")
	for i, p := range s.paths {
		if len(rel) >= len(p) && strings.EqualFold(rel[:len(p)], p) && (len(rel) == len(p) || rel[len(p)] == '/') {
			return s.stages[i]
		}
	}
	return s.root
}

// ScopedStage is a Scoped of inbound stages (request filtering per
// location).
type ScopedStage struct{ *Scoped[pipeline.Stage] }

// Serve runs r's stage.
func (s ScopedStage) Serve(r *pipeline.Request) *pipeline.Result {
	if st := s.For(r); st != nil {
		return st.Serve(r)
	}
	return nil
}

// ScopedErrors is a Scoped of custom error pages (<httpErrors> per
// location).
type ScopedErrors struct{ *Scoped[pipeline.ErrorPages] }

// Page returns the page of r's custom error pages.
func (s ScopedErrors) Page(r *pipeline.Request, status, substatus int, skip bool) *pipeline.ErrorPage {
	if e := s.For(r); e != nil {
		return e.Page(r, status, substatus, skip)
	}
	return nil
}

// ScopedOut is a Scoped of outbound stages (custom headers per location).
type ScopedOut struct{ *Scoped[pipeline.OutStage] }

// Respond runs r's stage.
func (s ScopedOut) Respond(r *pipeline.Request, status int, h pipeline.Header) func(pipeline.BodyWriter) pipeline.BodyWriter {
	if st := s.For(r); st != nil {
		return st.Respond(r, status, h)
	}
	return nil
}
