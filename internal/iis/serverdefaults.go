package iis

import (
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The request-filtering lists that IIS's applicationHost.config gives every
// site: source code, project files, databases and ASP.NET's special folders
// are never served, whatever the app's own web.config says, unless it
// removes them. An ASP.NET Core app publishes its web.config, *.dll and
// *.json files into the folder IIS serves; under Gatehouse nothing is
// served from the folder, but the app may still expose such paths (static
// files, a catch-all route), and IIS answers them 404.7 and 404.8.
var (
	// serverExtensions are denied with 404.7 (fileExtensions
	// allowUnlisted="true", each added with allowed="false").
	serverExtensions = []string{
		".asax", ".ascx", ".master", ".skin", ".browser", ".sitemap", ".config", ".cs", ".csproj",
		".vb", ".vbproj", ".webinfo", ".licx", ".resx", ".resources", ".mdb", ".vjsproj", ".java",
		".jsl", ".ldb", ".dsdgm", ".ssdgm", ".lsad", ".ssmap", ".cd", ".dsprototype",
		".lsaprototype", ".sdm", ".sdmdocument", ".mdf", ".ldf", ".ad", ".dd", ".ldd", ".sd",
		".adprototype", ".lddprototype", ".exclude", ".refresh", ".compiled", ".msgx", ".vsdisco",
		".rules",
	}
	// serverHidden are the hidden segments (404.8).
	serverHidden = []string{
		"web.config", "bin", "App_code", "App_GlobalResources", "App_LocalResources",
		"App_WebReferences", "App_Data", "App_Browsers",
	}
)

// WithServerDefaults returns the request filtering an app gets under IIS:
// the server-level lists above, as edited by the app's <clear/> and
// <remove> (rf.ServerEdits), followed by the app's own entries. An app's
// own <add> of a server-level extension replaces the server's entry (IIS
// refuses such a duplicate unless it was removed first; Gatehouse lets the
// app's entry win, so files that relied on that stay valid).
//
// With rf nil (no <requestFiltering> in the file), only the lists apply:
// the other settings keep the meaning of an absent section (nothing else
// is checked). It never returns nil and never changes rf.
func WithServerDefaults(rf *config.RequestFiltering) *config.RequestFiltering {
	var out config.RequestFiltering
	if rf != nil {
		out = *rf
	} else {
		out = config.RequestFiltering{
			AllowDoubleEscaping:    true,
			AllowHighBitCharacters: true,
			UnescapeQueryString:    true,
			FileExtensions:         config.FileExtensions{AllowUnlisted: true},
			Verbs:                  config.Verbs{AllowUnlisted: true},
		}
	}
	edits := &out.ServerEdits
	var rules []config.ExtensionRule
	if !edits.ClearExtensions {
		for _, ext := range serverExtensions {
			own := slices.ContainsFunc(out.FileExtensions.Rules, func(r config.ExtensionRule) bool { return r.Extension == ext })
			if !own && !containsFold(edits.RemovedExtensions, ext) {
				rules = append(rules, config.ExtensionRule{Extension: ext})
			}
		}
	}
	out.FileExtensions.Rules = append(rules, out.FileExtensions.Rules...)
	var hidden []string
	if !edits.ClearHidden {
		for _, seg := range serverHidden {
			if !containsFold(out.HiddenSegments, seg) && !containsFold(edits.RemovedHidden, seg) {
				hidden = append(hidden, seg)
			}
		}
	}
	out.HiddenSegments = append(hidden, out.HiddenSegments...)
	return &out
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(v string) bool { return strings.EqualFold(v, s) })
}

// Lists returns the effective lists of rf for "gatehouse check": the
// hidden segments, the denied extensions and the allowed ones, in the
// order they are checked. rf may be nil.
func Lists(rf *config.RequestFiltering) (hidden, denied, allowed []string) {
	if rf == nil {
		return nil, nil, nil
	}
	for _, r := range rf.FileExtensions.Rules {
		if r.Allowed {
			allowed = append(allowed, r.Extension)
		} else {
			denied = append(denied, r.Extension)
		}
	}
	return rf.HiddenSegments, denied, allowed
}
