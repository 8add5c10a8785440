// Package directory names Active Directory groups: it resolves the
// security identifiers (SIDs) of a Kerberos ticket's PAC to "DOMAIN\Group"
// names over LDAP, as IIS does when it builds a Windows token.
//
// Lookups are batched (one search for every SID of a login the cache does
// not hold), cached with a TTL, the SIDs the directory does not know
// cached for a shorter one, and bounded by a timeout. Each cold lookup
// opens its own connection (TLS from the start for ldaps://, StartTLS for
// ldap://), binds (simple, or Kerberos with a keytab), searches and
// closes it, so a Directory keeps no goroutine and no connection between
// lookups. The URLs are tried in
// order, starting with the last one that answered (failover between
// domain controllers). After a failed lookup the directory is not asked
// again for a while (retryAfter): logins go on meanwhile with the SIDs the
// cache cannot name, and each failed attempt logs one warning.
package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
	ldapgssapi "github.com/go-ldap/ldap/v3/gssapi"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout     = 3 * time.Second
	DefaultTTL         = 10 * time.Minute
	DefaultNegativeTTL = time.Minute
)

// retryAfter is how long the directory is left alone after a failed
// lookup.
const retryAfter = 30 * time.Second

// batch bounds the SIDs of one search filter.
const batch = 100

// maxPasswordFile bounds the bind password file read.
const maxPasswordFile = 4096

// Config is where the directory is and how to bind to it
// (siteconfig.Directory).
type Config struct {
	// URLs are "ldaps://host[:port]" or "ldap://host[:port]" (upgraded
	// with StartTLS), tried in order. Empty means the domain controllers
	// that Domain's _ldap._tcp SRV records name, over ldap:// with
	// StartTLS.
	URLs []string
	// Domain is the DNS domain whose SRV records name the domain
	// controllers when URLs is empty.
	Domain string
	// CAFile holds the PEM certificates the directory's TLS certificate
	// must chain to; "" means the system's roots.
	CAFile string
	// BindUser ("GATEHOUSE\svc-web", "svc-web@gatehouse.test" or a DN) and
	// BindPasswordFile (the password, one line) make a simple bind; with
	// no BindUser the searches are anonymous.
	BindUser, BindPasswordFile string
	// BindPrincipal ("svc-web@EXAMPLE.COM") makes a Kerberos bind (SASL
	// GSSAPI) instead: the principal logs in with its key from Keytab at
	// the domain controller it connects to (every AD domain controller is
	// a KDC) and binds with a ticket for ldap/<host>. It excludes BindUser.
	BindPrincipal, Keytab string
	// AllowCleartextBind lets a lookup go on without TLS (on a new
	// connection) when an ldap:// server refuses StartTLS. Without it
	// that server counts as failed: no bind is sent in cleartext.
	AllowCleartextBind bool
	// Timeout bounds one lookup (connect, bind, searches); TTL is how long
	// a name is kept, NegativeTTL how long a SID the directory does not
	// know is. Zero means the defaults.
	Timeout, TTL, NegativeTTL time.Duration
}

// Directory resolves SIDs to names. It is safe for concurrent use; one
// serves every app of a site.
type Directory struct {
	cfg   Config
	roots *x509.CertPool // nil: the system's
	log   *slog.Logger
	now   func() time.Time

	// lookupMu serialises cold lookups: logins waiting for one find its
	// names in the cache afterwards instead of asking again.
	lookupMu sync.Mutex

	mu        sync.Mutex // protects the fields below
	cache     map[string]cached
	accounts  map[string]cachedAccount // lower-cased principal → account (Account)
	preferred string                   // the URL that answered last
	domain    string                   // the directory's DNS domain, once known
	downUntil time.Time                // no lookup before then
	lastErr   error
	lastOK    time.Time

	lookups, hits, failures atomic.Uint64
}

type cached struct {
	name    string // "" for a SID the directory does not know
	expires time.Time
}

// ErrUnavailable is wrapped by the error of a lookup the directory could
// not answer.
var ErrUnavailable = errors.New("the directory is unavailable")

// New checks cfg (URL schemes, the CA file, the password file) and returns
// the Directory. Nothing is connected until the first lookup. log nil
// means slog.Default().
func New(cfg Config, log *slog.Logger) (*Directory, error) {
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.URLs) == 0 && cfg.Domain == "" {
		return nil, errors.New("directory: neither url nor domain is set")
	}
	for _, u := range cfg.URLs {
		if _, _, err := endpoint(u); err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
	}
	d := &Directory{cfg: cfg, log: log, now: time.Now, cache: map[string]cached{}, accounts: map[string]cachedAccount{}}
	if d.cfg.Timeout <= 0 {
		d.cfg.Timeout = DefaultTimeout
	}
	if d.cfg.TTL <= 0 {
		d.cfg.TTL = DefaultTTL
	}
	if d.cfg.NegativeTTL <= 0 {
		d.cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory: caFile: %w", err)
		}
		d.roots = x509.NewCertPool()
		if !d.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("directory: caFile %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if (cfg.BindUser == "") != (cfg.BindPasswordFile == "") {
		return nil, errors.New("directory: bindUser and bindPasswordFile go together")
	}
	if cfg.BindPrincipal != "" {
		if cfg.BindUser != "" {
			return nil, errors.New("directory: bindUser and bindPrincipal exclude each other")
		}
		if u, realm, ok := strings.Cut(cfg.BindPrincipal, "@"); !ok || u == "" || realm == "" {
			return nil, fmt.Errorf("directory: bindPrincipal %q: want name@REALM", cfg.BindPrincipal)
		}
		if _, err := keytab.Load(cfg.Keytab); err != nil {
			return nil, fmt.Errorf("directory: bindPrincipal's keytab %s: %w", cfg.Keytab, err)
		}
	}
	if cfg.BindPasswordFile != "" {
		if _, err := d.password(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// endpoint parses an ldap:// or ldaps:// URL into host:port and whether
// TLS starts at once.
func endpoint(raw string) (hostport string, ldaps bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("url %q: %w", raw, err)
	}
	port := "389"
	switch strings.ToLower(u.Scheme) {
	case "ldaps":
		ldaps, port = true, "636"
	case "ldap":
	default:
		return "", false, fmt.Errorf("url %q: want ldaps://host or ldap://host", raw)
	}
	if u.Hostname() == "" || u.Path != "" && u.Path != "/" {
		return "", false, fmt.Errorf("url %q: want ldaps://host[:port] with no path", raw)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return net.JoinHostPort(u.Hostname(), port), ldaps, nil
}

// password reads the bind password file: its first line.
func (d *Directory) password() (string, error) {
	f, err := os.Open(d.cfg.BindPasswordFile)
	if err != nil {
		return "", fmt.Errorf("directory: bindPasswordFile: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return "", fmt.Errorf("directory: bindPasswordFile: %w", err)
	}
	if len(b) > maxPasswordFile {
		return "", fmt.Errorf("directory: bindPasswordFile %s is longer than %d bytes", d.cfg.BindPasswordFile, maxPasswordFile)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("directory: bindPasswordFile %s is empty", d.cfg.BindPasswordFile)
	}
	return pw, nil
}

// Names returns the names ("DOMAIN\Group", "BUILTIN\Users") of the SIDs
// that the cache or the directory knows; the others are missing from the
// map. The error, wrapping ErrUnavailable, says why the directory could
// not be asked; the map then holds what the cache knew.
func (d *Directory) Names(ctx context.Context, sids []string) (map[string]string, error) {
	names, missing := d.fromCache(sids)
	if len(missing) == 0 {
		return names, nil
	}
	d.lookupMu.Lock()
	defer d.lookupMu.Unlock()
	// Another login may have looked them up meanwhile.
	more, missing := d.fromCache(missing)
	for k, v := range more {
		names[k] = v
	}
	if len(missing) == 0 {
		return names, nil
	}
	var found map[string]string
	err := d.ask(ctx, func(c *conn) (err error) {
		found, err = c.names(missing)
		return err
	})
	if err != nil {
		return names, err
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range missing {
		c := cached{name: found[s], expires: now.Add(d.cfg.NegativeTTL)}
		if c.name != "" {
			c.expires = now.Add(d.cfg.TTL)
			names[s] = c.name
		}
		d.cache[s] = c
	}
	d.sweep(now)
	return names, nil
}

// ask runs one lookup on a new connection, unless the directory failed
// within retryAfter, and keeps the health: a failure logs one warning and
// leaves the directory alone for retryAfter. d.lookupMu must be held. The
// error wraps ErrUnavailable.
func (d *Directory) ask(ctx context.Context, f func(c *conn) error) error {
	d.mu.Lock()
	down, lastErr := d.now().Before(d.downUntil), d.lastErr
	d.mu.Unlock()
	if down {
		return fmt.Errorf("%w (retried after %s): %w", ErrUnavailable, retryAfter, lastErr)
	}
	d.lookups.Add(1)
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	c, err := d.connect(ctx)
	if err == nil {
		err = f(c)
		c.Close()
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.failures.Add(1)
		d.downUntil, d.lastErr = now.Add(retryAfter), err
		d.log.Warn("directory lookup failed: group names are unknown, logins go on with group SIDs; retrying in "+retryAfter.String(), "err", err)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !d.lastOK.IsZero() && d.lastErr != nil {
		d.log.Info("directory answers again", "url", d.preferred)
	}
	d.lastErr, d.lastOK = nil, now
	return nil
}

// fromCache splits sids into the names the cache holds and the SIDs it
// does not (or no longer) hold.
func (d *Directory) fromCache(sids []string) (names map[string]string, missing []string) {
	names = make(map[string]string, len(sids))
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range sids {
		c, ok := d.cache[s]
		switch {
		case !ok || now.After(c.expires):
			missing = append(missing, s)
		case c.name != "":
			d.hits.Add(1)
			names[s] = c.name
		default:
			d.hits.Add(1)
		}
	}
	return names, missing
}

// sweep drops expired entries once the cache has grown; d.mu is held.
func (d *Directory) sweep(now time.Time) {
	if len(d.cache) < 4096 {
		return
	}
	for k, c := range d.cache {
		if now.After(c.expires) {
			delete(d.cache, k)
		}
	}
}

// conn is one bound connection and what its rootDSE says.
type conn struct {
	*ldap.Conn
	url     string
	tls     bool
	base    string            // defaultNamingContext
	netbios map[string]string // lower-cased domain DN → NetBIOS name
}

// names asks the directory for the names of sids.
func (c *conn) names(sids []string) (map[string]string, error) {
	found := map[string]string{}
	for chunk := range slices.Chunk(sids, batch) {
		var bins [][]byte
		for _, s := range chunk {
			if b, err := sidBytes(s); err == nil {
				bins = append(bins, b)
			}
		}
		if len(bins) == 0 {
			continue
		}
		res, err := c.Search(ldap.NewSearchRequest(c.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			sidFilter(bins), []string{"objectSid", "sAMAccountName"}, nil))
		if err != nil {
			return nil, fmt.Errorf("%s: search for %d SIDs under %s: %w", c.url, len(bins), c.base, err)
		}
		for _, e := range res.Entries {
			sid, err := sidString(e.GetRawAttributeValue("objectSid"))
			acct := e.GetAttributeValue("sAMAccountName")
			if err != nil || acct == "" {
				continue
			}
			found[sid] = c.qualify(sid, e.DN, acct)
		}
	}
	return found, nil
}

// qualify prefixes an account name with its domain's NetBIOS name:
// BUILTIN for the builtin domain's SIDs, else the domain whose DN ends
// the entry's.
func (c *conn) qualify(sid, dn, acct string) string {
	if strings.HasPrefix(sid, "S-1-5-32-") {
		return `BUILTIN\` + acct
	}
	dn = strings.ToLower(dn)
	best, dom := 0, ""
	for ncName, nb := range c.netbios {
		if len(ncName) > best && (dn == ncName || strings.HasSuffix(dn, ","+ncName)) {
			best, dom = len(ncName), nb
		}
	}
	if dom == "" {
		return acct
	}
	return dom + `\` + acct
}

// connect dials the URLs in turn, the one that answered last first, and
// returns the first connection that is secured and bound.
func (d *Directory) connect(ctx context.Context) (*conn, error) {
	urls := d.cfg.URLs
	if len(urls) == 0 {
		var err error
		if urls, err = d.discover(ctx); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	pref := d.preferred
	d.mu.Unlock()
	if i := slices.Index(urls, pref); i > 0 {
		urls = append([]string{pref}, slices.Delete(slices.Clone(urls), i, i+1)...)
	}
	var errs []error
	for _, u := range urls {
		c, err := d.open(ctx, u, true)
		if errors.Is(err, errNoStartTLS) {
			// go-ldap cannot use a connection after a refused StartTLS:
			// a new one goes on in cleartext, as allowCleartextBind allows.
			d.log.Warn("the directory refused StartTLS; going on in cleartext (allowCleartextBind)", "url", u, "err", err)
			c, err = d.open(ctx, u, false)
		}
		if err == nil {
			d.mu.Lock()
			d.preferred, d.domain = u, dnsDomain(c.base)
			d.mu.Unlock()
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// discover finds the domain controllers in DNS (_ldap._tcp.<domain>).
func (d *Directory) discover(ctx context.Context) ([]string, error) {
	_, srvs, err := net.DefaultResolver.LookupSRV(ctx, "ldap", "tcp", d.cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("find the domain controllers of %s in DNS: %w", d.cfg.Domain, err)
	}
	var urls []string
	for _, s := range srvs {
		urls = append(urls, "ldap://"+net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))))
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("DNS names no domain controller for %s", d.cfg.Domain)
	}
	return urls, nil
}

// errNoStartTLS is open's error for a server that refused StartTLS when
// allowCleartextBind allows going on without it.
var errNoStartTLS = errors.New("StartTLS refused")

// open connects to one URL, secures the connection (for ldap://, with
// StartTLS when startTLS is set), binds, and reads the rootDSE and the
// domains' NetBIOS names. Every network step is bounded by ctx's
// deadline.
func (d *Directory) open(ctx context.Context, raw string, startTLS bool) (_ *conn, err error) {
	hostport, ldaps, err := endpoint(raw)
	if err != nil {
		return nil, err
	}
	var dialer net.Dialer
	nc, err := dialer.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	deadline, _ := ctx.Deadline()
	if err := nc.SetDeadline(deadline); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	host, _, _ := net.SplitHostPort(hostport)
	tlsCfg := &tls.Config{ServerName: host, RootCAs: d.roots, MinVersion: tls.VersionTLS12}
	if ldaps {
		tc := tls.Client(nc, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("%s: TLS: %w", raw, err)
		}
		nc = tc
	}
	c := &conn{Conn: ldap.NewConn(nc, ldaps), url: raw, tls: ldaps}
	c.Start()
	c.SetTimeout(time.Until(deadline))
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if !ldaps && startTLS {
		if err := c.StartTLS(tlsCfg); err != nil {
			if d.cfg.AllowCleartextBind && isRefusal(err) {
				return nil, fmt.Errorf("%s: %w: %w", raw, errNoStartTLS, err)
			}
			return nil, fmt.Errorf("%s: StartTLS: %w", raw, err)
		}
		c.tls = true
	}
	if d.cfg.BindUser != "" {
		pw, err := d.password()
		if err != nil {
			return nil, err
		}
		if err := c.Bind(d.cfg.BindUser, pw); err != nil {
			return nil, fmt.Errorf("%s: bind as %s: %w", raw, d.cfg.BindUser, err)
		}
	}
	if d.cfg.BindPrincipal != "" {
		if err := d.kerberosBind(c, host); err != nil {
			return nil, fmt.Errorf("%s: Kerberos bind as %s: %w", raw, d.cfg.BindPrincipal, err)
		}
	}
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"defaultNamingContext", "configurationNamingContext"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return nil, fmt.Errorf("%s: read the rootDSE: %w", raw, err)
	}
	c.base = res.Entries[0].GetAttributeValue("defaultNamingContext")
	cfgNC := res.Entries[0].GetAttributeValue("configurationNamingContext")
	if c.base == "" || cfgNC == "" {
		return nil, fmt.Errorf("%s: the rootDSE names no defaultNamingContext: not an Active Directory domain controller?", raw)
	}
	res, err = c.Search(ldap.NewSearchRequest("CN=Partitions,"+cfgNC, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=crossRef)(nETBIOSName=*))", []string{"nETBIOSName", "nCName"}, nil))
	if err != nil {
		return nil, fmt.Errorf("%s: read the domains' NetBIOS names: %w", raw, err)
	}
	c.netbios = map[string]string{}
	for _, e := range res.Entries {
		c.netbios[strings.ToLower(e.GetAttributeValue("nCName"))] = e.GetAttributeValue("nETBIOSName")
	}
	return c, nil
}

// kerberosBind logs BindPrincipal in with its key from the keytab (read
// anew, so a rotated key is used at once) at the KDC on host, and binds
// with SASL GSSAPI for ldap/<host>, with no security layer: the
// connection is already TLS. gokrb5 bounds each KDC exchange (5 s); the
// client and its session are dropped afterwards.
func (d *Directory) kerberosBind(c *conn, host string) error {
	user, realm, _ := strings.Cut(d.cfg.BindPrincipal, "@")
	kt, err := keytab.Load(d.cfg.Keytab)
	if err != nil {
		return fmt.Errorf("keytab %s: %w", d.cfg.Keytab, err)
	}
	cfg := krbconfig.New()
	cfg.LibDefaults.DefaultRealm = realm
	cfg.LibDefaults.DNSLookupKDC = false
	cfg.LibDefaults.UDPPreferenceLimit = 1 // TCP only
	cfg.Realms = []krbconfig.Realm{{Realm: realm, KDC: []string{net.JoinHostPort(host, "88")}}}
	cl := krbclient.NewWithKeytab(user, realm, kt, cfg, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return fmt.Errorf("login at the KDC on %s: %w", host, err)
	}
	return c.GSSAPIBind(&ldapgssapi.Client{Client: cl}, "ldap/"+host, "")
}

// isRefusal reports whether err is the server's answer (an LDAP result
// code), not a broken connection.
func isRefusal(err error) bool {
	var le *ldap.Error
	return errors.As(err, &le) && le.ResultCode != ldap.ErrorNetwork
}

// Check connects as a lookup would and says what it found: the URL that
// answered, whether over TLS, the bind, the domain and its NetBIOS name.
func (d *Directory) Check(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	c, err := d.connect(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	sec := "TLS"
	if !c.tls {
		sec = "cleartext"
	}
	bind := "anonymous"
	switch {
	case d.cfg.BindUser != "":
		bind = "bound as " + d.cfg.BindUser
	case d.cfg.BindPrincipal != "":
		bind = "bound with Kerberos as " + d.cfg.BindPrincipal
	}
	return fmt.Sprintf("%s (%s, %s): domain %s (%s)", c.url, sec, bind, c.netbios[strings.ToLower(c.base)], c.base), nil
}

// Health is the directory's state for the admin status and the metrics.
type Health struct {
	// URL is the one that answered last, "" before any lookup.
	URL string
	// Up is false after a failed lookup, until one succeeds; LastError is
	// that failure.
	Up        bool
	LastError string
	// LastOK is when a lookup last succeeded.
	LastOK time.Time
	// Lookups counts the lookups sent to the directory, CacheHits the
	// SIDs answered from the cache, Failures the lookups that failed.
	Lookups, CacheHits, Failures uint64
}

// Health returns the directory's state and counters.
func (d *Directory) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := Health{URL: d.preferred, Up: d.lastErr == nil, LastOK: d.lastOK,
		Lookups: d.lookups.Load(), CacheHits: d.hits.Load(), Failures: d.failures.Load()}
	if d.lastErr != nil {
		h.LastError = d.lastErr.Error()
	}
	return h
}
