package siteconfig

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultMaxClockSkew is MIT Kerberos's clockskew default.
const DefaultMaxClockSkew = 5 * time.Minute

// Authentication is a site's authentication settings: the schemes its apps
// have unless their web.config says otherwise (IIS's applicationHost.config
// level), and where the secrets are. See docs/authentication.md.
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

	// UserNameFormat (userNameFormat, default "domain") names a Windows
	// user whose Kerberos ticket carries an Active Directory PAC: "domain"
	// gives DOMAIN\user, as IIS does; "upn" the user principal name
	// (alice@example.com); "principal" the Kerberos principal
	// (alice@EXAMPLE.COM). Authorization rules match every form. Tickets
	// without a PAC (MIT KDCs) always give the principal.
	UserNameFormat string `yaml:"userNameFormat" json:"userNameFormat,omitempty"`
	// Directory (directory) is the Active Directory that names the
	// Windows groups of a ticket's PAC (DOMAIN\Group). Without it the
	// groups are SIDs, but for the well-known ones.
	Directory Directory `yaml:"directory" json:"directory,omitzero"`
}

// Directory is where the Active Directory domain controllers are and how
// Gatehouse binds to them (authentication.directory).
type Directory struct {
	// URL (url) is one or more "ldaps://dc.example.com" or
	// "ldap://dc.example.com" (upgraded with StartTLS), tried in order.
	// Empty: the domain controllers that Domain's _ldap._tcp SRV records
	// name, as SSSD and Windows clients find them.
	URL URLList `yaml:"url" json:"url,omitempty"`
	// Domain (domain) is the DNS domain whose SRV records name the domain
	// controllers when url is empty.
	Domain string `yaml:"domain" json:"domain,omitempty"`
	// CAFile (caFile, default: the system's roots) holds the PEM
	// certificates the domain controllers' TLS certificates chain to.
	CAFile string `yaml:"caFile" json:"caFile,omitempty"`
	// BindUser (bindUser: "EXAMPLE\svc-web", "svc-web@example.com" or a
	// DN) and BindPasswordFile (bindPasswordFile: the password, one line)
	// make a simple bind; without them the searches are anonymous.
	BindUser         string `yaml:"bindUser" json:"bindUser,omitempty"`
	BindPasswordFile string `yaml:"bindPasswordFile" json:"bindPasswordFile,omitempty"`
	// BindPrincipal (bindPrincipal: "svc-web@EXAMPLE.COM") makes a
	// Kerberos bind (SASL GSSAPI) instead of a simple one: the principal's
	// key comes from BindKeytab (bindKeytab, default: the site's keytab),
	// the KDC is the domain controller connected to, and the ticket is for
	// ldap/<the URL's host>.
	BindPrincipal string `yaml:"bindPrincipal" json:"bindPrincipal,omitempty"`
	BindKeytab    string `yaml:"bindKeytab" json:"bindKeytab,omitempty"`
	// AllowCleartextBind (allowCleartextBind, default false) lets the
	// lookups go on without TLS when an ldap:// server refuses StartTLS.
	// Without it that server counts as failed: no bind goes in cleartext.
	AllowCleartextBind bool `yaml:"allowCleartextBind" json:"allowCleartextBind,omitempty"`
	// Timeout (timeout, default 3s) bounds one lookup; CacheTTL (cacheTTL,
	// default 10m) is how long a group name is kept; NegativeCacheTTL
	// (negativeCacheTTL, default 1m) how long a SID the directory does not
	// know is.
	Timeout          time.Duration `yaml:"timeout" json:"timeout,omitempty"`
	CacheTTL         time.Duration `yaml:"cacheTTL" json:"cacheTTL,omitempty"`
	NegativeCacheTTL time.Duration `yaml:"negativeCacheTTL" json:"negativeCacheTTL,omitempty"`
}

// IsZero reports whether no directory is configured.
func (d Directory) IsZero() bool {
	return len(d.URL) == 0 && d.Domain == "" && d.CAFile == "" && d.BindUser == "" && d.BindPasswordFile == "" &&
		d.BindPrincipal == "" && d.BindKeytab == "" && !d.AllowCleartextBind && d.Timeout == 0 && d.CacheTTL == 0 && d.NegativeCacheTTL == 0
}

// URLList is one URL or a list of them.
type URLList []string

// UnmarshalYAML implements yaml.Unmarshaler: a scalar is a list of one.
func (u *URLList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*u = URLList{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*u = l
	return nil
}
