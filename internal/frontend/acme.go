package frontend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/certmagic"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"go.uber.org/zap"
)

// Automatic HTTPS: the bindings with certificate: auto get their
// certificates from an ACME server through certmagic, which stores them
// (acme.storage), renews them in the background and staples their OCSP
// responses. Handshakes take the certificate from certmagic's cache
// (tls.Config.GetCertificate), so a renewed certificate serves the next
// handshake and open connections are not touched.
//
// Gatehouse answers both challenges itself, on the sockets it serves:
// http-01 on its http listeners before any routing (acmeHTTPChallengePath),
// tls-alpn-01 in the TLS handshake of its https listeners (a ClientHello
// that offers only acmeTLS1). certmagic is told the ports of those
// listeners (AltHTTPPort, AltTLSALPNPort): finding them taken, it starts
// no challenge server of its own.

// acmeTLS1 is the ALPN protocol of the tls-alpn-01 challenge (RFC 8737).
const acmeTLS1 = "acme-tls/1"

// acmeHTTPChallengePath is where the CA fetches http-01 key
// authorizations (RFC 8555 section 8.3).
const acmeHTTPChallengePath = "/.well-known/acme-challenge/"

// acmeSettings is the acme section of a config, checked and read by
// prepare: the storage folder exists and the CA roots are loaded.
type acmeSettings struct {
	conf  siteconfig.ACME
	roots *x509.CertPool
	names []string // the host names of the auto bindings, in file order
}

// prepareACME reads what cfg's automatic HTTPS needs; nil without an auto
// binding.
func prepareACME(cfg *siteconfig.Config) (*acmeSettings, error) {
	if !cfg.ACMEEnabled() {
		return nil, nil
	}
	a := &acmeSettings{conf: cfg.ACME}
	roots, err := cfg.ACME.RootPool()
	if err != nil {
		return nil, fmt.Errorf("acme.caRootFile: %w", err)
	}
	a.roots = roots
	if err := os.MkdirAll(cfg.ACME.Storage, 0o700); err != nil {
		return nil, fmt.Errorf("acme.storage: %w", err)
	}
	seen := map[string]bool{}
	for i := range cfg.Sites {
		for _, b := range cfg.Sites[i].Bindings {
			if b.Certificate == siteconfig.CertificateAuto && !seen[b.Host] {
				seen[b.Host] = true
				a.names = append(a.names, b.Host)
			}
		}
	}
	return a, nil
}

// acmeManager runs certmagic for the server: one certificate cache for the
// server's life, and the certmagic configuration of the current site
// config, swapped whole on reload.
type acmeManager struct {
	log *slog.Logger
	zap *zap.Logger

	cur atomic.Pointer[acmeState] // nil until the first apply

	mu      sync.Mutex // serializes apply and stop; guards the fields below
	cache   *certmagic.Cache
	ctx     context.Context // ends certmagic's obtain and renew work
	cancel  context.CancelFunc
	managed map[string]bool // host names under management
	stopped bool

	// challengeTLS answers tls-alpn-01 handshakes.
	challengeTLS *tls.Config
}

// acmeState is certmagic's configuration for one site config.
type acmeState struct {
	cm     *certmagic.Config
	issuer *certmagic.ACMEIssuer
}

func newACMEManager(log *slog.Logger) *acmeManager {
	m := &acmeManager{log: log, zap: zapToSlog(log.With("component", "acme")), managed: map[string]bool{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.challengeTLS = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{acmeTLS1},
		GetCertificate: m.getCertificate,
	}
	return m
}

// getCertificate is the GetCertificate of the auto bindings' tls.Configs:
// certmagic's cached certificate for the SNI name (or the tls-alpn-01
// challenge certificate).
func (m *acmeManager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	st := m.cur.Load()
	if st == nil {
		return nil, fmt.Errorf("no certificate for %q yet: automatic HTTPS has not started", hello.ServerName)
	}
	return st.cm.GetCertificate(hello)
}

// challengeConfig returns the tls.Config for a ClientHello of a
// tls-alpn-01 validation (one that offers only acme-tls/1), or nil.
func (m *acmeManager) challengeConfig(hello *tls.ClientHelloInfo) *tls.Config {
	if m.cur.Load() == nil || len(hello.SupportedProtos) != 1 || hello.SupportedProtos[0] != acmeTLS1 {
		return nil
	}
	return m.challengeTLS
}

// serveHTTP01 answers an http-01 validation request with its key
// authorization. It returns false, having written nothing, for any other
// request.
func (m *acmeManager) serveHTTP01(ctx context.Context, w http.ResponseWriter, pr *pipeline.Request) bool {
	st := m.cur.Load()
	if st == nil || !strings.HasPrefix(pr.Path, acmeHTTPChallengePath) {
		return false
	}
	r := (&http.Request{
		Method:     pr.Method,
		Host:       pr.Host,
		URL:        &url.URL{Path: pr.Path},
		RequestURI: pr.Path,
		RemoteAddr: pr.RemoteAddr,
		Header:     http.Header{},
	}).WithContext(ctx)
	return st.issuer.HandleHTTPChallenge(w, r)
}

// acmeListeners are the ports the challenges are answered on: certmagic
// is told them so that it starts no challenge server of its own.
type acmeListeners struct {
	httpPort int // 0: no http listener, no http-01
	tlsPort  int
}

// apply puts the settings a in force and has certmagic manage their
// names; names the config dropped are no longer renewed. A nil a (no auto
// binding left) ends the management of every name.
func (m *acmeManager) apply(a *acmeSettings, ls acmeListeners) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	if a == nil {
		m.unmanage(nil)
		m.cur.Store(nil)
		return
	}
	opts := certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			if st := m.cur.Load(); st != nil {
				return st.cm, nil
			}
			return nil, errors.New("automatic HTTPS has no configuration")
		},
		RenewCheckInterval: a.conf.RenewCheckInterval,
		OCSPCheckInterval:  a.conf.RenewCheckInterval,
		Logger:             m.zap,
	}
	if m.cache == nil {
		m.cache = certmagic.NewCache(opts)
	} else {
		m.cache.SetOptions(opts)
	}
	cm := certmagic.New(m.cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: a.conf.Storage},
		RenewalWindowRatio: a.conf.RenewalWindowRatio,
		Logger:             m.zap,
	})
	httpOK := a.conf.Challenge(siteconfig.ChallengeHTTP01) && ls.httpPort != 0
	issuer := certmagic.NewACMEIssuer(cm, certmagic.ACMEIssuer{
		CA:     a.conf.Directory,
		Email:  a.conf.Email,
		Agreed: true,
		// The challenges are answered on Gatehouse's own sockets; the
		// ports tell certmagic where they are. It tries to listen on them
		// on every address (ListenHost ""), finds them taken and so
		// starts no challenge server of its own.
		DisableHTTPChallenge:    !httpOK,
		DisableTLSALPNChallenge: !a.conf.Challenge(siteconfig.ChallengeTLSALPN01),
		AltHTTPPort:             ls.httpPort,
		AltTLSALPNPort:          ls.tlsPort,
		TrustedRoots:            a.roots,
		Logger:                  m.zap,
	})
	cm.Issuers = []certmagic.Issuer{issuer}
	m.cur.Store(&acmeState{cm: cm, issuer: issuer})

	keep := map[string]bool{}
	var fresh []string
	for _, n := range a.names {
		keep[n] = true
		if !m.managed[n] {
			fresh = append(fresh, n)
		}
	}
	m.unmanage(keep)
	if len(fresh) == 0 {
		return
	}
	for _, n := range fresh {
		m.managed[n] = true
	}
	m.log.Info("automatic HTTPS: managing certificates", "names", fresh, "directory", a.conf.Directory,
		"storage", a.conf.Storage, "http01", httpOK, "tlsalpn01", !issuer.DisableTLSALPNChallenge)
	if err := cm.ManageAsync(m.ctx, fresh); err != nil {
		m.log.Error("automatic HTTPS: start managing certificates", "names", fresh, "err", err)
	}
}

// unmanage stops renewing the managed names not in keep. Called with m.mu
// held.
func (m *acmeManager) unmanage(keep map[string]bool) {
	var drop []certmagic.SubjectIssuer
	for n := range m.managed {
		if !keep[n] {
			drop = append(drop, certmagic.SubjectIssuer{Subject: n})
			delete(m.managed, n)
		}
	}
	if len(drop) > 0 && m.cache != nil {
		m.cache.RemoveManaged(drop)
	}
}

// stop ends certmagic's work: obtains and renewals in flight are
// cancelled and the maintenance goroutine has ended when it returns.
func (m *acmeManager) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.stopped = true
	m.cancel()
	if m.cache != nil {
		m.cache.Stop()
	}
}

// acmeListenersOf finds, among the bound listeners, where cfg's challenges
// are answered: the first http binding for http-01, the first auto
// binding for tls-alpn-01. Called with s.mu held.
func (s *Server) acmeListenersOf(cfg *siteconfig.Config) acmeListeners {
	var ls acmeListeners
	port := func(b *siteconfig.Binding) int {
		if l := s.listeners[b.ListenerKey()]; l != nil {
			return l.raw.Addr().(*net.TCPAddr).Port
		}
		return 0
	}
	for i := range cfg.Sites {
		for j := range cfg.Sites[i].Bindings {
			b := &cfg.Sites[i].Bindings[j]
			if b.Scheme == "http" && ls.httpPort == 0 {
				ls.httpPort = port(b)
			}
			if b.Certificate == siteconfig.CertificateAuto && ls.tlsPort == 0 {
				ls.tlsPort = port(b)
			}
		}
	}
	return ls
}
