package config

// Rewrite is the <system.webServer><rewrite> section of a web.config (or the
// <globalRules> of a site-level rules file): inbound rules and rewrite maps as
// written, with the line of each element for errors. Package rewrite compiles
// it into a rule set; package webconfig fills it. Enumerated attributes are
// stored in their canonical spelling (the parser accepts any letter case).
type Rewrite struct {
	// Rules are the <rule> elements of <rules> (or <globalRules>) in file
	// order. Rules with enabled="false" are left out.
	Rules []RewriteRule
	// Maps are the <rewriteMap> elements of <rewriteMaps>.
	Maps []RewriteMap
	// Outbound are the rules of <outboundRules> that rewrite a response
	// header, in file order; rules with enabled="false" and rules on the
	// response body (filterByTags) are left out.
	Outbound []OutboundRule
	// PreConditions are the <outboundRules><preConditions>.
	PreConditions []RewritePreCondition
}

// OutboundRule is one <outboundRules><rule> on a response header.
type OutboundRule struct {
	// File and Line say where the rule is (see RewriteRule.File).
	File string `json:"-"`
	Line int
	Name string
	// StopProcessing (stopProcessing, default false): after this rule's
	// action, evaluate no further outbound rules.
	StopProcessing bool
	// PatternSyntax (patternSyntax): as for RewriteRule.
	PatternSyntax string
	// PreCondition (preCondition) names one of Rewrite.PreConditions that
	// the response must pass; "" for none.
	PreCondition string
	Match        OutboundMatch
	Conditions   RewriteConditions
	Action       OutboundAction
}

// OutboundMatch is an outbound rule's <match>.
type OutboundMatch struct {
	Line int
	// ServerVariable (serverVariable) names the response header the rule
	// reads and rewrites: RESPONSE_X_Frame_Options is X-Frame-Options.
	ServerVariable string
	// FilterByTags (filterByTags), for a rule on the response body (no
	// ServerVariable), are the HTML tags whose URL attributes the rule
	// reads and rewrites, as IIS spells them ("A", "Img", "Form").
	FilterByTags []string
	// Pattern (pattern) is matched against the header's value ("" when the
	// response has none).
	Pattern    string
	IgnoreCase bool // ignoreCase, default true
	Negate     bool // negate, default false
}

// OutboundAction is an outbound rule's <action>.
type OutboundAction struct {
	Line int
	// Type (type, default "None"): "None" or "Rewrite".
	Type string
	// Value (value) is expanded ({R:1}, {HTTP_HOST}, {RESPONSE_Location})
	// and becomes the header's value; an empty result removes the header.
	Value string
	// Replace (replace, default true): false keeps a value already there.
	Replace bool
}

// RewritePreCondition is one <preConditions><preCondition>.
type RewritePreCondition struct {
	Line int
	Name string
	// MatchAny (logicalGrouping="MatchAny"; default MatchAll).
	MatchAny bool
	// PatternSyntax (patternSyntax): as for RewriteRule.
	PatternSyntax string
	// List are its <add input pattern negate ignoreCase> checks.
	List []RewriteCondition
}

// RewriteRule is one <rule>.
type RewriteRule struct {
	// File is the file the rule was read from (the web.config, or the file
	// a configSource attribute named); Line is its line there.
	File string `json:"-"`
	Line int
	Name string
	// Base is the <location path> the rule was written in, relative to
	// the app ("api"); "" for the app's own rules. Its pattern sees the URL
	// below that path, and a relative URL of its action resolves there, as
	// for a rule in a web.config of that folder under IIS.
	Base string `json:",omitempty"`
	// StopProcessing (stopProcessing, default false): after this rule's
	// Rewrite or None action, evaluate no further rules.
	StopProcessing bool
	// PatternSyntax (patternSyntax): "ECMAScript" (the default, also for ""),
	// "Wildcard" or "ExactMatch". It applies to the match and the conditions.
	PatternSyntax string
	Match         RewriteMatch
	Conditions    RewriteConditions
	// ServerVariables are the rule's <serverVariables><set> for request
	// headers (HTTP_*), set when the rule matches, before its action.
	ServerVariables []RewriteSet
	Action          RewriteAction
}

// RewriteSet is one <serverVariables><set name value replace>.
type RewriteSet struct {
	Line int
	// Name is the server variable, HTTP_X_FORWARDED_HOST for the request
	// header X-Forwarded-Host.
	Name string
	// Value (value) is expanded like a substitution URL.
	Value string
	// Replace (replace, default true): false keeps a value already there.
	Replace bool
}

// RewriteMatch is a rule's <match>.
type RewriteMatch struct {
	Line int
	// URL (url, required) is the pattern matched against the URL path
	// without its leading slash (relative to the app for web.config rules).
	URL string
	// IgnoreCase (ignoreCase, default true).
	IgnoreCase bool
	// Negate (negate, default false): the rule applies when URL does not match.
	Negate bool
}

// RewriteConditions is a rule's <conditions>.
type RewriteConditions struct {
	Line int
	// MatchAny (logicalGrouping="MatchAny"; default MatchAll).
	MatchAny bool
	// TrackAllCaptures (trackAllCaptures, default false): {C:n} numbers the
	// captures of every matched condition in order, instead of only the last.
	TrackAllCaptures bool
	List             []RewriteCondition
}

// RewriteCondition is one <conditions><add>.
type RewriteCondition struct {
	Line int
	// Input (input, required) is expanded ({HTTP_HOST}, {R:1}, …) and tested.
	Input string
	// MatchType (matchType): "Pattern" (default, also for ""), "IsFile" or
	// "IsDirectory".
	MatchType string
	// Pattern (pattern) is required for MatchType Pattern.
	Pattern    string
	IgnoreCase bool // ignoreCase, default true
	Negate     bool // negate, default false
}

// RewriteAction is a rule's <action>.
type RewriteAction struct {
	Line int
	// Type (type, default "None"): "None", "Rewrite", "Redirect",
	// "CustomResponse" or "AbortRequest".
	Type string
	// URL (url) is the substitution for Rewrite and Redirect.
	URL string
	// AppendQueryString (appendQueryString, default true).
	AppendQueryString bool
	// RedirectType (redirectType, default 301): 301 Permanent, 302 Found, 303
	// SeeOther, 307 Temporary, 308 PermanentRedirect.
	RedirectType int
	// CustomResponse: statusCode (required, 200–999), subStatusCode (default
	// 0), statusReason, statusDescription.
	StatusCode        int
	SubStatusCode     int
	StatusReason      string
	StatusDescription string
}

// RewriteMap is one <rewriteMap>.
type RewriteMap struct {
	// File is the file the map was read from (see RewriteRule.File).
	File string `json:"-"`
	Line int
	Name string
	// DefaultValue (defaultValue, default ""): the value of a key not listed.
	DefaultValue string
	// IgnoreCase (ignoreCase, default true): keys match without regard to case.
	IgnoreCase bool
	Entries    []RewriteMapEntry
}

// RewriteMapEntry is one <rewriteMap><add key value>.
type RewriteMapEntry struct {
	Line       int
	Key, Value string
}

// HTTPRedirect is the <system.webServer><httpRedirect> section (the IIS
// HTTP Redirection module) of an app or of a <location path> in it.
type HTTPRedirect struct {
	// File is the file the section was read from (see RewriteRule.File);
	// Line is its line there.
	File string `json:"-"`
	Line int
	// Path is the <location path> the section is in, relative to the app,
	// without a leading slash ("old/page.htm"); "" for the whole app. A
	// location's section applies to that path and below, and takes the
	// attributes it does not write from the app's.
	Path string
	// Given names the attributes written (for that inheritance).
	Given map[string]bool `json:"-"`
	// Enabled (enabled, default false).
	Enabled bool
	// Destination (destination) is the URL requests are sent to; it may use
	// $S (the path after the app, with its leading slash), $V (the request
	// path), $Q (the query string with its "?") and $P (without it) when
	// ExactDestination is set.
	Destination string
	// ExactDestination (exactDestination, default false): send Destination as
	// it is; otherwise the request's path below the app is appended to it.
	ExactDestination bool
	// ChildOnly (childOnly, default false): redirect only requests for
	// content directly in the app folder, not in its subfolders.
	ChildOnly bool
	// Status (httpResponseStatus, default 302): 301 Permanent, 302 Found,
	// 307 Temporary, 308 PermanentRedirect.
	Status int
	// Wildcards are the <add wildcard destination> children, in order; the
	// first whose wildcard matches the request path decides the destination.
	Wildcards []HTTPRedirectWildcard
}

// HTTPRedirectWildcard is one <httpRedirect><add wildcard destination>.
type HTTPRedirectWildcard struct {
	Line        int
	Wildcard    string
	Destination string
}
