package siteconfig

import (
	"crypto/x509"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"
)

// CertificateAuto is the value of Binding.Certificate that has Gatehouse
// obtain and renew the binding's certificate with ACME.
const CertificateAuto = "auto"

// ACME challenge types of ACME.Challenges.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// Defaults of the acme section, applied when a binding has certificate: auto.
const (
	// DefaultACMEDirectory is Let's Encrypt's production directory.
	DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"
	// DefaultACMEStorage is the folder, beside the config file, that holds
	// the ACME account, certificates, keys and OCSP staples.
	DefaultACMEStorage = "acme"
	// DefaultRenewCheckInterval is how often the certificates are checked
	// for renewal (Caddy's and certmagic's default).
	DefaultRenewCheckInterval = 10 * time.Minute
	// DefaultRenewalWindowRatio renews a certificate when a third of its
	// lifetime is left (30 of Let's Encrypt's 90 days), or earlier when
	// the CA's renewal information (ARI) says so.
	DefaultRenewalWindowRatio = 1.0 / 3
)

// ACME holds the settings of automatic HTTPS, shared by every binding with
// certificate: auto. Without such a binding the section is not used.
type ACME struct {
	// Directory (directory, an https URL, default Let's Encrypt's
	// production directory) is the ACME server's directory.
	Directory string `yaml:"directory" json:"directory,omitempty"`
	// Email (email, optional but recommended) is the account's contact:
	// the CA writes to it about expiring certificates and problems.
	Email string `yaml:"email" json:"email,omitempty"`
	// CARootFile (caRootFile, optional) is a PEM bundle of the root
	// certificates the ACME server's own HTTPS certificate must chain to,
	// for a private CA or a test server; default: the system's roots.
	CARootFile string `yaml:"caRootFile" json:"caRootFile,omitempty"`
	// Storage (storage, a folder, default "acme" beside the config file)
	// holds the account key, the certificates, their keys and OCSP
	// staples. Created (mode 0700) if missing. Gatehouse processes that
	// share it share the certificates.
	Storage string `yaml:"storage" json:"storage,omitempty"`
	// Challenges (challenges, default both) are the challenge types offered
	// to the CA: "http-01" (answered on the http bindings, port 80 for
	// public CAs) and "tls-alpn-01" (answered on the https bindings, port
	// 443). http-01 needs an http binding in the file.
	Challenges []string `yaml:"challenges" json:"challenges,omitempty"`
	// RenewCheckInterval (renewCheckInterval, default 10m) is how often the
	// certificates are checked for renewal and their OCSP staples for
	// freshness.
	RenewCheckInterval time.Duration `yaml:"renewCheckInterval" json:"renewCheckInterval,omitempty"`
	// RenewalWindowRatio (renewalWindowRatio, between 0 and 1, default
	// 1/3) is the part of a certificate's lifetime left when it is renewed.
	RenewalWindowRatio float64 `yaml:"renewalWindowRatio" json:"renewalWindowRatio,omitempty"`

	// lines are the lines of the section's keys in the file.
	lines map[string]int
}

// ACMEEnabled reports whether the config has a binding with certificate: auto.
func (c *Config) ACMEEnabled() bool {
	for i := range c.Sites {
		for j := range c.Sites[i].Bindings {
			if c.Sites[i].Bindings[j].Certificate == CertificateAuto {
				return true
			}
		}
	}
	return false
}

// Challenge reports whether challenge type t is offered.
func (a *ACME) Challenge(t string) bool {
	for _, c := range a.Challenges {
		if c == t {
			return true
		}
	}
	return false
}

// RootPool reads CARootFile; nil (the system's roots) when it is not set.
func (a *ACME) RootPool() (*x509.CertPool, error) {
	if a.CARootFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(a.CARootFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", a.CARootFile)
	}
	return pool, nil
}

// recordLines notes the line of every key of the acme section.
func (a *ACME) recordLines(doc *yaml.Node) {
	n := mapValue(doc, "acme")
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	a.lines = map[string]int{"": n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		a.lines[n.Content[i].Value] = n.Content[i].Line
	}
}

// line returns the line of key in the acme section, or of the section.
func (a *ACME) line(key string) int {
	if l := a.lines[key]; l > 0 {
		return l
	}
	return a.lines[""]
}

// resolvePaths makes the section's files absolute against base.
func (a *ACME) resolvePaths(abs func(string) string) {
	a.CARootFile = abs(a.CARootFile)
	a.Storage = abs(a.Storage)
}

// applyDefaults fills in the section; base is the config file's folder.
func (a *ACME) applyDefaults(base string) {
	if a.Directory == "" {
		a.Directory = DefaultACMEDirectory
	}
	if a.Storage == "" {
		a.Storage = filepath.Join(base, DefaultACMEStorage)
	}
	if a.Challenges == nil {
		a.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
	}
	if a.RenewCheckInterval == 0 {
		a.RenewCheckInterval = DefaultRenewCheckInterval
	}
	if a.RenewalWindowRatio == 0 {
		a.RenewalWindowRatio = DefaultRenewalWindowRatio
	}
}

// check reports, by line, what is wrong with the section. hasHTTP says
// whether the file has an http binding to answer http-01 on.
func (a *ACME) check(fail func(line int, format string, args ...any), hasHTTP bool) {
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		fail(a.line("directory"), "acme.directory %q: want the https URL of an ACME directory", a.Directory)
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			fail(a.line("email"), "acme.email %q: want an address such as admin@example.com", a.Email)
		}
	}
	if _, err := a.RootPool(); err != nil {
		fail(a.line("caRootFile"), "acme.caRootFile: %v", err)
	}
	if st, err := os.Stat(a.Storage); err == nil && !st.IsDir() {
		fail(a.line("storage"), "acme.storage %s is not a folder", a.Storage)
	}
	if len(a.Challenges) == 0 {
		fail(a.line("challenges"), "acme.challenges is empty: want http-01, tls-alpn-01 or both")
	}
	seen := map[string]bool{}
	for _, c := range a.Challenges {
		switch {
		case c != ChallengeHTTP01 && c != ChallengeTLSALPN01:
			fail(a.line("challenges"), "acme.challenges: %q: want http-01 or tls-alpn-01", c)
		case seen[c]:
			fail(a.line("challenges"), "acme.challenges: %q appears twice", c)
		}
		seen[c] = true
	}
	if len(a.Challenges) == 1 && a.Challenges[0] == ChallengeHTTP01 && !hasHTTP {
		fail(a.line("challenges"), "acme.challenges: http-01 alone needs an http binding to answer it on")
	}
	if a.RenewCheckInterval < time.Second {
		fail(a.line("renewCheckInterval"), "acme.renewCheckInterval %v: want 1s or more", a.RenewCheckInterval)
	}
	if r := a.RenewalWindowRatio; r <= 0 || r >= 1 {
		fail(a.line("renewalWindowRatio"), "acme.renewalWindowRatio %v: want a number between 0 and 1", r)
	}
}

// checkAuto returns what is wrong with a binding with certificate: auto.
func (b *Binding) checkAuto() []string {
	var msgs []string
	if b.CertificateFile != "" || b.KeyFile != "" {
		msgs = append(msgs, "certificate: auto obtains the certificate; leave out certificateFile and keyFile")
	}
	switch h := b.Host; {
	case h == "":
		msgs = append(msgs, "certificate: auto needs a host name to obtain the certificate for")
	case h[0] == '*':
		msgs = append(msgs, fmt.Sprintf("certificate: auto cannot obtain a wildcard certificate (host %q): give an exact name", h))
	}
	return msgs
}
