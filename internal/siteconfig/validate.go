package siteconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// validate checks c after defaults; name prefixes every message ("file:line: ...").
func (c *Config) validate(name string) error {
	var errs []error
	fail := func(line int, format string, args ...any) {
		if line > 0 {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
		}
	}
	if len(c.Sites) == 0 {
		fail(0, "no sites")
	}
	if v := c.TLS.MinVersion; v != "1.2" && v != "1.3" {
		fail(0, "tls.minVersion %q: want \"1.2\" or \"1.3\"", v)
	}
	if c.Limits.MaxAllowedContentLength < -1 || c.Limits.MaxRequestBytes < -1 || c.Limits.MaxURL < -1 ||
		c.Limits.MaxQueryString < -1 || c.Limits.MaxConnections < -1 || c.Limits.MaxConnectionsPerClient < -1 {
		fail(0, "limits: a limit must be positive, or -1 for none")
	}

	for _, msg := range append(append(c.Compression.check(), c.checkTrustedProxies()...), c.checkUpstreams()...) {
		fail(0, "%s", msg)
	}

	siteNames := map[string]int{}
	bindingNames := map[string]int{}
	bindingKeys := map[string]int{}       // listener key + host → line
	listenerScheme := map[string]string{} // address:port (port != 0) → scheme
	for i := range c.Sites {
		s := &c.Sites[i]
		if s.Name == "" {
			fail(s.Line, "site without a name")
		} else if prev, dup := siteNames[strings.ToLower(s.Name)]; dup {
			fail(s.Line, "site %q already defined at line %d", s.Name, prev)
		} else {
			siteNames[strings.ToLower(s.Name)] = s.Line
		}
		if len(s.Bindings) == 0 {
			fail(s.Line, "site %q has no bindings", s.Name)
		}
		hasHTTPS := false
		for j := range s.Bindings {
			b := &s.Bindings[j]
			hasHTTPS = hasHTTPS || b.Scheme == "https"
			for _, msg := range b.check() {
				fail(b.Line, "binding %s: %s", b.Name, msg)
			}
			if prev, dup := bindingNames[b.Name]; dup {
				fail(b.Line, "binding name %q already used at line %d", b.Name, prev)
			}
			bindingNames[b.Name] = b.Line
			key := b.ListenerKey() + " " + b.Host
			if prev, dup := bindingKeys[key]; dup {
				fail(b.Line, "binding %s duplicates the binding at line %d (same scheme, address, port and host)", b.Name, prev)
			}
			bindingKeys[key] = b.Line
			if b.Port != 0 {
				addr := b.ListenAddr()
				if sch, ok := listenerScheme[addr]; ok && sch != b.Scheme {
					fail(b.Line, "binding %s: %s is also an %s binding; one port serves one scheme", b.Name, addr, sch)
				}
				listenerScheme[addr] = b.Scheme
			}
		}
		if s.RedirectToHTTPS && !hasHTTPS {
			fail(s.Line, "site %q: redirectToHttps needs an https binding", s.Name)
		}
		if f := s.AccessLog.Format; f != "" && f != "w3c" && f != "json" {
			fail(s.Line, "site %q: accessLog.format %q: want \"w3c\" or \"json\"", s.Name, f)
		}
		if s.AccessLog.Fields != "" {
			if s.AccessLog.Format == "json" {
				fail(s.Line, "site %q: accessLog.fields is for format w3c; the JSON log has every field", s.Name)
			} else if _, err := SelectW3CFields(s.AccessLog.Fields); err != nil {
				fail(s.Line, "site %q: accessLog.fields: %v", s.Name, err)
			}
		}
		if au := &s.Authentication; au.MaxClockSkew < 0 {
			fail(s.Line, "site %q: authentication.maxClockSkew %v is negative", s.Name, au.MaxClockSkew)
		}
		if au := &s.Authentication; au.Basic && au.UserFile == "" {
			fail(s.Line, "site %q: authentication.basic needs authentication.userFile", s.Name)
		}
		if f := s.Authentication.UserNameFormat; f != "" && f != "domain" && f != "upn" && f != "principal" {
			fail(s.Line, "site %q: authentication.userNameFormat %q: want \"domain\", \"upn\" or \"principal\"", s.Name, f)
		}
		if d := &s.Authentication.Directory; !d.IsZero() {
			checkDirectory(d, func(format string, args ...any) {
				fail(s.Line, "site %q: authentication.directory: "+format, append([]any{s.Name}, args...)...)
			})
		}
		paths := map[string]int{}
		for j := range s.Applications {
			a := &s.Applications[j]
			if msg := checkAppPath(a.Path); msg != "" {
				fail(a.Line, "application %q: %s", a.Path, msg)
			}
			if prev, dup := paths[strings.ToLower(a.Path)]; dup {
				fail(a.Line, "application %q: site %q already has this path at line %d", a.Path, s.Name, prev)
			}
			paths[strings.ToLower(a.Path)] = a.Line
			if a.Dir == "" {
				fail(a.Line, "application %q: dir is required", a.Path)
			} else if _, err := os.Stat(filepath.Join(a.Dir, "web.config")); err != nil && !a.NoWebConfig {
				fail(a.Line, "application %q: no web.config in %s", a.Path, a.Dir)
			}
			if a.Protocol != "" && !config.ValidProtocol(a.Protocol) {
				fail(a.Line, "application %q: protocol %q: want %q or %q", a.Path, a.Protocol, config.ProtocolHTTP1, config.ProtocolH2C)
			}
			for _, msg := range a.Pool.check() {
				fail(a.Line, "application %q: %s", a.Path, msg)
			}
			if wd := a.WorkingDirectory; wd != "" {
				if st, err := os.Stat(wd); err != nil || !st.IsDir() {
					fail(a.Line, "application %q: workingDirectory %s is not a folder", a.Path, wd)
				}
			}
		}
	}
	if c.ACMEEnabled() {
		hasHTTP := false
		for i := range c.Sites {
			for _, b := range c.Sites[i].Bindings {
				hasHTTP = hasHTTP || b.Scheme == "http"
			}
		}
		c.ACME.check(fail, hasHTTP)
	}
	return errors.Join(errs...)
}

// check returns what is wrong with one binding, including unreadable TLS files.
func (b *Binding) check() []string {
	var msgs []string
	switch b.Scheme {
	case "http", "https":
	default:
		msgs = append(msgs, fmt.Sprintf("scheme %q: want http or https", b.Scheme))
	}
	if b.Port < 0 || b.Port > 65535 {
		msgs = append(msgs, fmt.Sprintf("port %d out of range", b.Port))
	}
	if b.Address != "" && net.ParseIP(b.Address) == nil {
		msgs = append(msgs, fmt.Sprintf("address %q is not an IP address", b.Address))
	}
	if h := b.Host; h != "" {
		rest := strings.TrimPrefix(h, "*.")
		if strings.ContainsAny(rest, "*:/ ") || rest == "" || strings.HasPrefix(rest, ".") {
			msgs = append(msgs, fmt.Sprintf("host %q: want a name such as www.example.com or *.example.com", h))
		}
	}
	if b.Scheme != "https" {
		if b.Certificate != "" || b.CertificateFile != "" || b.KeyFile != "" || b.ClientCAFile != "" ||
			(b.ClientCertificate != "" && b.ClientCertificate != ClientCertNone) {
			msgs = append(msgs, "certificate settings need scheme https")
		}
		return msgs
	}
	switch b.ClientCertificate {
	case ClientCertNone, ClientCertOptional, ClientCertRequired:
	default:
		msgs = append(msgs, fmt.Sprintf("clientCertificate %q: want none, optional or required", b.ClientCertificate))
	}
	if b.Certificate != "" && b.Certificate != CertificateAuto {
		return append(msgs, fmt.Sprintf("certificate %q: want auto (or leave it out and give certificateFile and keyFile)", b.Certificate))
	}
	if b.Certificate == CertificateAuto {
		return append(msgs, b.checkAuto()...)
	}
	if b.CertificateFile == "" || b.KeyFile == "" {
		return append(msgs, "https needs certificateFile and keyFile, or certificate: auto")
	}
	if _, err := tls.LoadX509KeyPair(b.CertificateFile, b.KeyFile); err != nil {
		msgs = append(msgs, fmt.Sprintf("load certificate: %v", err))
	}
	if b.ClientCAFile != "" {
		if _, err := LoadCertPool(b.ClientCAFile); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	return msgs
}

// LoadCertPool reads a PEM bundle of CA certificates.
func LoadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read client CA %s: no PEM certificates", file)
	}
	return pool, nil
}

func checkAppPath(p string) string {
	switch {
	case p == "/":
		return ""
	case !strings.HasPrefix(p, "/"):
		return "path must start with /"
	case strings.HasSuffix(p, "/"):
		return "path must not end with /"
	case strings.Contains(p, "//"), strings.ContainsAny(p, "?#\\ "):
		return "path must be a clean virtual path such as /api"
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return "path must not contain . or .. segments"
		}
	}
	return ""
}

// checkDirectory checks a site's authentication.directory.
func checkDirectory(d *Directory, fail func(format string, args ...any)) {
	if len(d.URL) == 0 && d.Domain == "" {
		fail("set url (ldaps://dc.example.com) or domain (found in DNS)")
	}
	for _, raw := range d.URL {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			fail("url %q: want ldaps://host[:port] or ldap://host[:port] (StartTLS)", raw)
		}
	}
	if (d.BindUser == "") != (d.BindPasswordFile == "") {
		fail("bindUser and bindPasswordFile go together")
	}
	if d.BindPrincipal != "" && d.BindUser != "" {
		fail("bindUser and bindPrincipal exclude each other")
	}
	if u, realm, ok := strings.Cut(d.BindPrincipal, "@"); d.BindPrincipal != "" && (!ok || u == "" || realm == "") {
		fail("bindPrincipal %q: want name@REALM", d.BindPrincipal)
	}
	if d.BindKeytab != "" && d.BindPrincipal == "" {
		fail("bindKeytab needs bindPrincipal")
	}
	if d.Timeout < 0 || d.CacheTTL < 0 || d.NegativeCacheTTL < 0 {
		fail("timeout, cacheTTL and negativeCacheTTL must not be negative")
	}
}
