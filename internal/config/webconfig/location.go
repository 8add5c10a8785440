package webconfig

import (
	"slices"

	"github.com/gatehouse/gatehouse/internal/config"
)

// readLocations reads the request filtering, IP restrictions (static and
// dynamic), custom headers, URL compression and custom error pages of each
// <location path="sub"> the first
// reading found, into p.app.Locations.
// Each location is read again on its own, starting from the app's
// sections, so that its <remove>, <clear/> and attributes edit the app's
// as IIS merges them, whether it comes before or after them in the file.
func (p *parser) readLocations() error {
	for _, s := range p.scoped {
		base := &config.App{RequestFiltering: cloneFiltering(p.app.RequestFiltering)}
		if h := p.app.CustomHeaders; h != nil {
			base.CustomHeaders = &config.CustomHeaders{Headers: slices.Clone(h.Headers), Redirect: slices.Clone(h.Redirect)}
		}
		if ips := p.app.IPSecurity; ips != nil {
			c := *ips
			c.Rules = slices.Clone(ips.Rules)
			base.IPSecurity = &c
		}
		if uc := p.app.URLCompression; uc != nil {
			c := *uc
			base.URLCompression = &c
		}
		if d := p.app.DynamicIPSecurity; d != nil {
			c := *d
			base.DynamicIPSecurity = &c
		}
		base.HTTPErrors, base.ErrorMode, base.Set = p.app.HTTPErrors, p.app.ErrorMode, map[string]bool{} // httpErrors copies what it edits
		if rw := p.app.Rewrite; rw != nil {
			base.Rewrite = &config.Rewrite{Rules: slices.Clone(rw.Rules), Maps: slices.Clone(rw.Maps), Outbound: rw.Outbound, PreConditions: rw.PreConditions}
		}
		q := &parser{file: p.file, dir: p.dir, raw: p.raw, lookup: p.lookup, app: base, pos: map[string]position{}, only: s.element}
		if err := q.parse(); err != nil {
			return err
		}
		for _, sec := range q.app.Sections {
			p.app.Sections = append(p.app.Sections, "location "+s.element+": "+sec)
		}
		p.app.Unsupported = append(p.app.Unsupported, q.app.Unsupported...)
		loc := config.Location{Path: s.element, Line: s.line, RequestFiltering: q.app.RequestFiltering, CustomHeaders: q.app.CustomHeaders,
			IPSecurity: q.app.IPSecurity, URLCompression: q.app.URLCompression, DynamicIPSecurity: q.app.DynamicIPSecurity,
			HTTPErrors: q.app.HTTPErrors, ErrorMode: q.app.ErrorMode}
		if q.rewriteRead {
			loc.Rewrite = q.app.Rewrite
			if rw := q.app.Rewrite; p.app.Rewrite == nil && len(rw.Outbound) > 0 || p.app.Rewrite != nil && len(rw.Outbound) != len(p.app.Rewrite.Outbound) {
				p.unsupported(s.line, "location "+s.element+": rewrite/outboundRules", "not applied to part of an app: the app's outbound rules apply to all of it")
			}
		}
		if rf := loc.RequestFiltering; rf != nil {
			if !sameLimits(rf, p.app.RequestFiltering) {
				p.unsupported(s.line, "location "+s.element+": requestFiltering/requestLimits", "not applied to part of an app: the app's limits apply to all of it")
			}
			if rf.RemoveServerHeader != (p.app.RequestFiltering != nil && p.app.RequestFiltering.RemoveServerHeader) {
				p.unsupported(s.line, "location "+s.element+": requestFiltering removeServerHeader", "not applied to part of an app: the app's setting applies to all of it")
			}
		}
		p.app.Locations = append(p.app.Locations, loc)
	}
	return nil
}

// cloneFiltering returns a copy of rf that a reading can edit without
// changing rf.
func cloneFiltering(rf *config.RequestFiltering) *config.RequestFiltering {
	if rf == nil {
		return nil
	}
	c := *rf
	c.Limits.HeaderLimits = slices.Clone(rf.Limits.HeaderLimits)
	c.FileExtensions.Rules = slices.Clone(rf.FileExtensions.Rules)
	c.Verbs.Rules = slices.Clone(rf.Verbs.Rules)
	c.HiddenSegments = slices.Clone(rf.HiddenSegments)
	c.DenyURLSequences = slices.Clone(rf.DenyURLSequences)
	c.DenyQueryStringSequences = slices.Clone(rf.DenyQueryStringSequences)
	c.ServerEdits.RemovedExtensions = slices.Clone(rf.ServerEdits.RemovedExtensions)
	c.ServerEdits.RemovedHidden = slices.Clone(rf.ServerEdits.RemovedHidden)
	return &c
}

// sameLimits reports whether a location's request limits are the app's.
func sameLimits(loc, app *config.RequestFiltering) bool {
	var want config.RequestLimits
	if app != nil {
		want = app.Limits
	}
	l := loc.Limits
	return l.MaxAllowedContentLength == want.MaxAllowedContentLength && l.MaxURL == want.MaxURL &&
		l.MaxQueryString == want.MaxQueryString && slices.Equal(l.HeaderLimits, want.HeaderLimits)
}
