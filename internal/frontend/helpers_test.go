package frontend_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pki is a CA with a server certificate for the test names and a client
// certificate, written as PEM files into dir.
type pki struct {
	dir        string
	caPool     *x509.CertPool
	caFile     string
	certFile   string
	keyFile    string
	clientCert tls.Certificate
	caKey      *ecdsa.PrivateKey
	ca         *x509.Certificate
}

var serial atomic.Int64

func newPKI(t testing.TB, dir string) *pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &pki{dir: dir, caPool: x509.NewCertPool(), caKey: caKey, ca: ca,
		caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key")}
	p.caPool.AddCert(ca)
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	p.writeServerCert(t, "server one")
	cert, key := p.issue(t, "client one", nil, x509.ExtKeyUsageClientAuth)
	p.clientCert = tls.Certificate{Certificate: [][]byte{cert}, PrivateKey: key}
	return p
}

// writeServerCert (re)writes the server certificate files with CommonName cn.
func (p *pki) writeServerCert(t testing.TB, cn string) {
	t.Helper()
	der, key := p.issue(t, cn, []string{"localhost", "a.test", "*.b.test", "unknown.test", "c.test", "deep.x.b.test", "b.test"}, x509.ExtKeyUsageServerAuth)
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Key first: the watcher debounces, so a reader sees both files new.
	writePEM(t, p.keyFile, "EC PRIVATE KEY", kd)
	writePEM(t, p.certFile, "CERTIFICATE", der)
}

func (p *pki) issue(t testing.TB, cn string, names []string, use x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{use},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeApp answers with a JSON echo of what it saw. Its behaviour can be
// switched per request path.
type fakeApp struct {
	spec    frontend.AppSpec
	chain   *pipeline.Chain // the app's stages; nil: none
	closed  atomic.Int32
	hits    atomic.Int64
	block   chan struct{} // requests to /block wait for it
	arrived chan struct{} // when not nil, requests to /block send on it first
	bodyErr atomic.Value  // error of the last body read
	hungUp  atomic.Int64  // requests to /hang that saw their context end
	// afterFuncs counts the requests to /hangcb and /cb whose context had
	// an AfterFuncSlot (the lean loop's), which they used.
	afterFuncs atomic.Int64
}

// slotAfterFuncer is a context with an AfterFuncSlot, which the app side
// uses instead of context.AfterFunc when it has one (as the proxy's
// exchange does), one registration at a time.
type slotAfterFuncer interface {
	AfterFuncSlot(f func()) (stop func() bool)
}

// afterFuncSlot is context.AfterFunc(ctx, f), through ctx's AfterFuncSlot
// when it has one (counted in a.afterFuncs).
func (a *fakeApp) afterFuncSlot(ctx context.Context, f func()) (stop func() bool) {
	if af, ok := ctx.(slotAfterFuncer); ok {
		a.afterFuncs.Add(1)
		return af.AfterFuncSlot(f)
	}
	return context.AfterFunc(ctx, f)
}

type echo struct {
	Site, App, Path, Host, Query string
	RawPath                      string // the escaped path the app received
	Method, Protocol             string
	Proto                        int
	TLS                          bool
	PeerCN                       string
	Body                         int
}

// Current returns the app itself: a fakeApp's settings never change.
func (a *fakeApp) Current() pipeline.App { return a }

// Forward is how every request reaches the app, as it reaches app.App:
// the pipeline.Request as the stages left it.
func (a *fakeApp) Forward(ctx context.Context, w http.ResponseWriter, r *pipeline.Request, body io.Reader) {
	a.hits.Add(1)
	path, err := url.PathUnescape(r.Path)
	if err != nil {
		path = r.Path
	}
	if strings.HasSuffix(path, "/block") {
		if a.arrived != nil {
			select {
			case a.arrived <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		<-a.block
	}
	if strings.HasSuffix(path, "/hold") {
		<-ctx.Done() // until the client goes away
		return
	}
	if strings.HasSuffix(path, "/bighead") {
		w.Header().Set("X-Big", strings.Repeat("b", 20000))
		io.WriteString(w, "big head")
		return
	}
	if strings.HasSuffix(path, "/hang") {
		select {
		case <-ctx.Done():
			a.hungUp.Add(1)
		case <-time.After(10 * time.Second):
		}
		return
	}
	if strings.HasSuffix(path, "/hangcb") || strings.HasSuffix(path, "/cb") {
		// As the proxy's exchange: a function that runs when the client
		// goes away, stopped when the request ends. /cb ends at once.
		gone := make(chan struct{})
		stop := a.afterFuncSlot(ctx, func() { close(gone) })
		defer stop()
		if strings.HasSuffix(path, "/cb") {
			io.WriteString(w, "cb")
			return
		}
		select {
		case <-gone:
			a.hungUp.Add(1)
		case <-time.After(10 * time.Second):
		}
		return
	}
	if strings.HasSuffix(path, "/fields") {
		// The fields the query names ("f=Name:value", in order), then a
		// body of five bytes.
		q, _ := url.ParseQuery(r.RawQuery)
		for _, f := range q["f"] {
			k, v, _ := strings.Cut(f, ":")
			w.Header()[k] = append(w.Header()[k], v)
		}
		io.WriteString(w, "hello")
		return
	}
	if strings.HasSuffix(path, "/stream") {
		// A body of unknown length: flushed before the handler ends.
		io.WriteString(w, "first,")
		http.NewResponseController(w).Flush()
		io.WriteString(w, "second")
		return
	}
	if strings.HasSuffix(path, "/ws") {
		a.websocketEcho(ctx, w, r)
		return
	}
	if strings.HasSuffix(path, "/tunnel") {
		a.tunnelEcho(w, body)
		return
	}
	n := int64(0)
	if body != nil {
		if n, err = io.Copy(io.Discard, body); err != nil {
			a.bodyErr.Store(fmt.Errorf("read body: %w", err)) // one dynamic type for atomic.Value
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	e := echo{Site: a.spec.Site, App: a.spec.Path, Path: path, RawPath: r.Path, Host: r.Host, Query: r.RawQuery,
		Proto: protoMajor(r.Proto), TLS: r.TLS != nil, Body: int(n), Method: r.Method, Protocol: r.Header.Get(":protocol")}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		e.PeerCN = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(e)
}

// protoMajor returns the major version of proto ("HTTP/2.0": 2).
func protoMajor(proto string) int {
	if v, ok := strings.CutPrefix(proto, "HTTP/"); ok && v != "" {
		return int(v[0] - '0')
	}
	return 0
}

// websocketEcho echoes messages until the connection ends.
func (a *fakeApp) websocketEcho(ctx context.Context, w http.ResponseWriter, r *pipeline.Request) {
	h := http.Header{}
	r.Header.Range(func(k, v string) bool { h.Add(k, v); return true })
	req := (&http.Request{Method: r.Method, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Host: r.Host,
		URL: &url.URL{Path: r.Path}, RequestURI: r.RequestURI()}).WithContext(ctx)
	c, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// tunnelEcho answers an extended CONNECT (a WebSocket over HTTP/2 or
// HTTP/3) with 200 and echoes the stream's bytes until it ends.
func (a *fakeApp) tunnelEcho(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	if body == nil {
		return
	}
	buf := make([]byte, 4096)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// Chain returns the app's stages.
func (a *fakeApp) Chain() *pipeline.Chain { return a.chain }

func (a *fakeApp) Close(context.Context) error {
	a.closed.Add(1)
	return nil
}

// opener records the apps it opened, by "site+path".
type opener struct {
	mu    sync.Mutex
	apps  map[string]*fakeApp
	all   []*fakeApp
	fail  string // Dir that fails to open
	block chan struct{}
	// arrived, when not nil, is the apps' fakeApp.arrived: set it before
	// they open.
	arrived chan struct{}
	// chains gives the apps opened for "site+path" their stages.
	chains map[string]*pipeline.Chain
}

func newOpener() *opener {
	return &opener{apps: map[string]*fakeApp{}, block: make(chan struct{})}
}

func (o *opener) open(_ context.Context, spec frontend.AppSpec) (frontend.App, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != "" && spec.Dir == o.fail {
		return nil, errors.New("cannot open")
	}
	a := &fakeApp{spec: spec, block: o.block, arrived: o.arrived, chain: o.chains[spec.Site+spec.Path]}
	o.apps[spec.Site+spec.Path] = a
	o.all = append(o.all, a)
	return a, nil
}

func (o *opener) get(key string) *fakeApp {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.apps[key]
}

// env is a temp folder with app folders, certificates and a config file.
type env struct {
	dir string
	pki *pki
}

func newEnv(t testing.TB, apps ...string) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	for _, a := range apps {
		if err := os.MkdirAll(filepath.Join(e.dir, a), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.dir, a, "web.config"), []byte("<configuration/>"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.pki = newPKI(t, e.dir)
	return e
}

// config writes yaml (with $CERT, $KEY, $CA replaced) and parses it.
func (e *env) config(t testing.TB, yaml string) *siteconfig.Config {
	t.Helper()
	yaml = strings.NewReplacer("$CERT", e.pki.certFile, "$KEY", e.pki.keyFile, "$CA", e.pki.caFile).Replace(yaml)
	file := filepath.Join(e.dir, "gatehouse.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := siteconfig.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// running is a Server under Run in a goroutine.
type running struct {
	*frontend.Server
	stop func() error
}

func start(t *testing.T, cfg *siteconfig.Config, o *opener) *running {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := frontend.New(cfg, o.open, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "listeners bound", func() bool { return len(s.Addrs()) > 0 })
	return &running{Server: s, stop: stop}
}

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: it bounds a wait on a loaded machine, not a speed.
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mode is one client protocol of the test matrix.
type mode string

const (
	h1     mode = "h1"
	h2c    mode = "h2c"
	https1 mode = "https1"
	h2     mode = "h2"
	h3     mode = "h3"
)

var allModes = []mode{h1, h2c, https1, h2, h3}

func (m mode) tls() bool { return m == https1 || m == h2 || m == h3 }
func (m mode) proto() int {
	switch m {
	case h2c, h2:
		return 2
	case h3:
		return 3
	}
	return 1
}

// client returns an http.Client for mode that sends every request to addr
// (TCP for h1/h2, UDP for h3) whatever the URL's host, with SNI = URL host.
func client(t *testing.T, m mode, addr string, p *pki, withCert bool) *http.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: p.caPool}
	if withCert {
		tc.Certificates = []tls.Certificate{p.clientCert}
	}
	var rt http.RoundTripper
	switch m {
	case h3:
		tr := &http3.Transport{
			TLSClientConfig: tc,
			Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
				return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
			},
		}
		t.Cleanup(func() { _ = tr.Close() })
		rt = tr
	default:
		tr := &http.Transport{
			TLSClientConfig: tc,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
			Protocols: new(http.Protocols),
		}
		switch m {
		case h1, https1:
			tr.Protocols.SetHTTP1(true)
		case h2:
			tr.Protocols.SetHTTP2(true)
		case h2c:
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	}
	return &http.Client{Transport: rt, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (m mode) url(host, path string) string {
	if m.tls() {
		return "https://" + host + path
	}
	return "http://" + host + path
}

// get does a request and returns status, headers and body.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", req.URL, err)
	}
	return res, string(b)
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

func decode(t *testing.T, body string) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an app answer: %q", body)
	}
	return e
}

func addrOf(t *testing.T, s *running, binding string, m mode) string {
	t.Helper()
	if m == h3 {
		a := s.H3Addr(binding)
		if a == nil {
			t.Fatalf("no HTTP/3 address for %s", binding)
		}
		return a.String()
	}
	a := s.Addrs()[binding]
	if a == nil {
		t.Fatalf("no address for binding %s in %v", binding, s.Addrs())
	}
	return a.String()
}

// openEcho opens a WebSocket to the fake app's echo at addr (cleartext)
// and checks that a message comes back.
func openEcho(t *testing.T, ctx context.Context, addr string, e *env) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: client(t, h1, addr, e.pki, false)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		ws.CloseNow()
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "ping" {
		ws.CloseNow()
		t.Fatalf("echo: %q %v", msg, err)
	}
	return ws
}
