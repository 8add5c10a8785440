package siteconfig

import "time"

// DefaultMaxClockSkew is MIT Kerberos's clockskew default.
const DefaultMaxClockSkew = 5 * time.Minute

// Authentication is a site's authentication settings: the schemes its apps
// have unless their web.config says otherwise (IIS's applicationHost.config
// level), and where the secrets are. See the README, "Who is calling".
type Authentication struct {
	// Anonymous (anonymous, default true), Windows (windows, default
	// false) and Basic (basic, default false) turn the schemes on for the
	// site's apps; a web.config's <security><authentication> overrides them.
	Anonymous *bool `yaml:"anonymous" json:"anonymous,omitempty"`
	Windows   bool  `yaml:"windows" json:"windows,omitempty"`
	Basic     bool  `yaml:"basic" json:"basic,omitempty"`
	// BasicRealm (basicRealm, default "" = the request's host name) is the
	// realm of the Basic challenge, unless web.config sets one.
	BasicRealm string `yaml:"basicRealm" json:"basicRealm,omitempty"`

	// Keytab (keytab) is the Kerberos keytab holding the HTTP/<host> service
	// keys. Default: $KRB5_KTNAME (a "FILE:" prefix is dropped), else
	// /etc/krb5.keytab, as MIT Kerberos finds it. Re-read when it changes.
	Keytab string `yaml:"keytab" json:"keytab,omitempty"`
	// ServicePrincipal (servicePrincipal, default "" = any key in the
	// keytab that decrypts the ticket) pins the accepted service principal,
	// e.g. "HTTP/intranet.example.com".
	ServicePrincipal string `yaml:"servicePrincipal" json:"servicePrincipal,omitempty"`
	// MaxClockSkew (maxClockSkew, default 5m): how far a client's clock may
	// be from ours; also how long authenticators are remembered against
	// replay.
	MaxClockSkew time.Duration `yaml:"maxClockSkew" json:"maxClockSkew,omitempty"`

	// UserFile (userFile) is the htpasswd file of Basic users (bcrypt
	// hashes only, as `htpasswd -B` writes them). Watched and re-read.
	UserFile string `yaml:"userFile" json:"userFile,omitempty"`
	// GroupFile (groupFile, optional) gives users groups (roles) in Apache's
	// AuthGroupFile format, "group: user1 user2", one group a line; users
	// are Basic names or Kerberos "user@REALM". Watched and re-read.
	GroupFile string `yaml:"groupFile" json:"groupFile,omitempty"`
	// AllowCleartextBasic (allowCleartextBasic, default false) accepts
	// Basic credentials over http. Without it they are refused there and
	// Basic is only offered over https.
	AllowCleartextBasic bool `yaml:"allowCleartextBasic" json:"allowCleartextBasic,omitempty"`
	// PerRequestNegotiate (perRequestNegotiate, default false): make every
	// request carry its own Negotiate token. By default a Kerberos login
	// holds for the rest of its client connection, as IIS's
	// authPersistNonNTLM does, except for requests relayed by a trusted
	// proxy. Set it when an untrusted proxy in front of Gatehouse may
	// carry several users' requests over one connection.
	PerRequestNegotiate bool `yaml:"perRequestNegotiate" json:"perRequestNegotiate,omitempty"`
}
