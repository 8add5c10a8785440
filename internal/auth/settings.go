package auth

import (
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/directory"
)

// DefaultKeytab is where MIT Kerberos looks for the service keys when
// KRB5_KTNAME is not set.
const DefaultKeytab = "/etc/krb5.keytab"

// DefaultMaxClockSkew is MIT Kerberos's clockskew default.
const DefaultMaxClockSkew = 5 * time.Minute

// Settings are a site's authentication settings (siteconfig.Authentication).
// The zero value has no scheme on at all; start from config.DefaultSchemes.
type Settings struct {
	// Schemes are the site's default schemes, which web.config overrides.
	Schemes config.Schemes
	// Keytab is the keytab file; "" means KeytabPath("").
	Keytab string
	// ServicePrincipal, if set ("HTTP/host.example.com"), is the only
	// service principal whose tickets are accepted; "" accepts a ticket for
	// any principal whose key is in the keytab.
	ServicePrincipal string
	// MaxClockSkew is the largest clock difference with a client allowed;
	// 0 means DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// UserFile is the htpasswd file of Basic users; "" means none (Basic
	// then lets nobody in).
	UserFile string
	// GroupFile is the AuthGroupFile-style group file; "" means none.
	GroupFile string
	// AllowCleartextBasic accepts Basic credentials over http.
	AllowCleartextBasic bool
	// Replay is the replay cache to use, shared by the apps of a site;
	// nil means one of the Provider's own.
	Replay *ReplayCache
	// NoPersist makes every request authenticate itself; by default a
	// Negotiate login holds for the rest of its connection (IIS's
	// authPersistNonNTLM=true).
	NoPersist bool
	// UserNameFormat names a Kerberos user whose ticket carries an Active
	// Directory PAC: NameDomain ("" too), NameUPN or NamePrincipal.
	// Tickets without a PAC always give the principal.
	UserNameFormat string
	// Directory names the PAC's group SIDs, shared by the apps of a site;
	// nil leaves them SIDs (the well-known ones are named all the same).
	Directory *directory.Directory
}

// The values of Settings.UserNameFormat.
const (
	// NameDomain is DOMAIN\user, as IIS gives it (WindowsIdentity.Name).
	NameDomain = "domain"
	// NameUPN is the user principal name from the PAC ("alice@example.com").
	NameUPN = "upn"
	// NamePrincipal is the Kerberos principal ("alice@EXAMPLE.COM").
	NamePrincipal = "principal"
)

// KeytabPath returns the keytab to use: path when set, else $KRB5_KTNAME
// without its "FILE:" or "WRFILE:" prefix, else DefaultKeytab.
func KeytabPath(path string) string {
	if path != "" {
		return path
	}
	if v := os.Getenv("KRB5_KTNAME"); v != "" {
		for _, p := range []string{"FILE:", "WRFILE:"} {
			v = strings.TrimPrefix(v, p)
		}
		return v
	}
	return DefaultKeytab
}

func (s *Settings) skew() time.Duration {
	if s.MaxClockSkew <= 0 {
		return DefaultMaxClockSkew
	}
	return s.MaxClockSkew
}
