package frontend

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// modernCiphers are the TLS 1.2 suites offered: ECDHE with AEAD only. TLS 1.3
// suites are not configurable in Go and are all modern.
var modernCiphers = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// buildSNI reads the certificates of every https listener in cfg and returns,
// per listener key, the table that picks a binding's tls.Config by SNI name.
// Files are read now; a missing or broken file is an error. The bindings
// with certificate: auto take theirs from auto at each handshake.
func buildSNI(cfg *siteconfig.Config, auto getCertFunc) (map[string]*hostTable[*tls.Config], error) {
	out := map[string]*hostTable[*tls.Config]{}
	next := []string{"http/1.1"}
	if !cfg.Protocols.DisableHTTP2 {
		next = []string{"h2", "http/1.1"}
	}
	for i := range cfg.Sites {
		for j := range cfg.Sites[i].Bindings {
			b := &cfg.Sites[i].Bindings[j]
			if b.Scheme != "https" {
				continue
			}
			tc, err := bindingTLS(cfg, b, next, auto)
			if err != nil {
				return nil, err
			}
			t := out[b.ListenerKey()]
			if t == nil {
				// The first binding also answers clients whose SNI matches
				// nothing, unless a binding without host name exists.
				t = &hostTable[*tls.Config]{def: tc, hasDf: true}
				out[b.ListenerKey()] = t
			}
			t.add(b.Host, tc)
		}
	}
	return out, nil
}

// getCertFunc is the signature of tls.Config.GetCertificate.
type getCertFunc func(*tls.ClientHelloInfo) (*tls.Certificate, error)

func bindingTLS(cfg *siteconfig.Config, b *siteconfig.Binding, next []string, auto getCertFunc) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:   cfg.TLSMinVersion(),
		CipherSuites: modernCiphers,
		NextProtos:   next,
	}
	if b.Certificate == siteconfig.CertificateAuto {
		// Looked up at each handshake: a renewed certificate serves the
		// next handshake, and open connections keep theirs.
		tc.GetCertificate = auto
	} else {
		cert, err := tls.LoadX509KeyPair(b.CertificateFile, b.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load certificate of binding %s: %w", b.Name, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	switch b.ClientCertificate {
	case siteconfig.ClientCertOptional:
		tc.ClientAuth = tls.RequestClientCert
	case siteconfig.ClientCertRequired:
		tc.ClientAuth = tls.RequireAnyClientCert
	}
	if b.ClientCAFile != "" && tc.ClientAuth != tls.NoClientCert {
		pool, err := siteconfig.LoadCertPool(b.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("binding %s: %w", b.Name, err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if b.ClientCertificate == siteconfig.ClientCertRequired {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}

// baseTLS is the listener's tls.Config: it only picks the binding's config
// by SNI, so certificate reloads swap l.sni and need no new listener. A
// tls-alpn-01 validation gets the ACME challenge config instead.
func (l *listener) baseTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if tc := l.srv.acme.challengeConfig(hello); tc != nil {
				return tc, nil
			}
			tc, _ := l.sni.Load().lookup(hello.ServerName)
			return tc, nil
		},
	}
}

// baseTLSIfHTTPS returns baseTLS for https listeners and nil for http ones.
func (l *listener) baseTLSIfHTTPS() *tls.Config {
	if l.scheme != "https" {
		return nil
	}
	return l.baseTLS()
}

// tlsFiles lists the folders holding cfg's certificate, key and CA files and
// the set of those files, for the file watcher.
func tlsFiles(cfg *siteconfig.Config) (dirs []string, files map[string]bool) {
	files = map[string]bool{}
	seen := map[string]bool{}
	for i := range cfg.Sites {
		for _, b := range cfg.Sites[i].Bindings {
			for _, f := range []string{b.CertificateFile, b.KeyFile, b.ClientCAFile} {
				if f == "" {
					continue
				}
				files[filepath.Clean(f)] = true
				if d := filepath.Dir(f); !seen[d] {
					seen[d] = true
					dirs = append(dirs, d)
				}
			}
		}
	}
	return dirs, files
}

// certDebounce lets a renewal that rewrites cert and key finish before they
// are read again.
const certDebounce = 200 * time.Millisecond

// watchCerts owns w: on a change to a certificate, key or CA file it reloads
// the TLS tables (after certDebounce). It returns when stop closes.
func (s *Server) watchCerts(w *fsnotify.Watcher, stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			s.mu.Lock()
			hit := s.tlsWatched[filepath.Clean(ev.Name)]
			s.mu.Unlock()
			if hit {
				timer.Reset(certDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Warn("watch certificates", "err", err)
		case <-timer.C:
			if err := s.refreshTLS(); err != nil {
				s.log.Error("reload certificates; keeping the old ones", "err", err)
			} else {
				s.log.Info("certificates reloaded")
			}
		}
	}
}

// refreshTLS re-reads all certificate files of the current config.
func (s *Server) refreshTLS() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sni, err := buildSNI(s.cfg, s.acme.getCertificate)
	if err != nil {
		return err
	}
	for key, l := range s.listeners {
		if t := sni[key]; t != nil {
			l.sni.Store(t)
		}
	}
	s.sni = sni
	return nil
}

// updateWatches makes the watcher follow the folders of the current config.
// Called with s.mu held.
func (s *Server) updateWatches() {
	dirs, files := tlsFiles(s.cfg)
	s.tlsWatched = files
	if s.watcher == nil {
		return
	}
	want := map[string]bool{}
	for _, d := range dirs {
		want[d] = true
		if !s.watchedDirs[d] {
			if err := s.watcher.Add(d); err != nil {
				s.log.Warn("watch certificate folder", "dir", d, "err", err)
				continue
			}
			s.watchedDirs[d] = true
		}
	}
	for d := range s.watchedDirs {
		if !want[d] {
			_ = s.watcher.Remove(d)
			delete(s.watchedDirs, d)
		}
	}
}
