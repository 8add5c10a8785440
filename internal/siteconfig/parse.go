package siteconfig

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Load reads and validates the config file at path. Relative paths inside it
// resolve against the file's folder. Errors name file:line.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, abs)
}

// Parse decodes and validates a config. file names the source in errors and
// its folder is the base for relative paths ("" means the working directory).
// Unknown keys are errors. The returned Config has all defaults applied.
func Parse(data []byte, file string) (*Config, error) {
	name := file
	if name == "" {
		name = "<config>"
	}
	cfg := &Config{}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err, nil)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty config", name)
		}
		return nil, yamlError(name, err, &root)
	}
	recordLines(cfg, &root)
	if file != "" {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", file, err)
		}
		cfg.File = abs
	}
	base := "."
	if cfg.File != "" {
		base = filepath.Dir(cfg.File)
	}
	cfg.resolvePaths(base)
	cfg.applyDefaults()
	if cfg.ACMEEnabled() {
		cfg.ACME.applyDefaults(base)
	}
	if err := cfg.validate(name); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Single returns the config of "gatehouse serve DIR": one site "default" with
// one http binding on listen ("host:port", ":8080"; an empty host means all
// addresses) and the app "/" in dir. It does not check dir; call Validate.
func Single(dir, listen string) *Config {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		host, portStr = listen, "0"
	}
	port, _ := strconv.Atoi(portStr)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	cfg := &Config{Sites: []Site{{
		Name:         "default",
		Bindings:     []Binding{{Scheme: "http", Address: host, Port: port}},
		Applications: []Application{{Path: "/", Dir: dir}},
	}}}
	cfg.applyDefaults()
	return cfg
}

// Validate checks a config built in code (such as by Single) the way Parse
// checks a file. Safe to call more than once.
func (c *Config) Validate() error {
	name := c.File
	if name == "" {
		name = "<config>"
	}
	return c.validate(name)
}

// yamlLine matches the decoder's "line N: " prefix. It is compiled on
// first use, by an error path: at package init it cost every start of
// Gatehouse.
var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): `) })

// yamlError turns "yaml: line 5: field x not found in type siteconfig.Site"
// into `file:5: unknown key "x" in a site (did you mean "y"?)`: file:line,
// and the file's terms rather than Go's (see yamlMessage). root is the
// document's node tree, nil if it did not parse.
func yamlError(name string, err error, root *yaml.Node) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			line := 0
			if sm := yamlLine().FindStringSubmatch(m); sm != nil {
				line, _ = strconv.Atoi(sm[1])
				m = m[len(sm[0]):]
			}
			m = yamlMessage(m, line, root)
			if line > 0 {
				msgs[i] = name + ":" + strconv.Itoa(line) + ": " + m
			} else {
				msgs[i] = name + ": " + m
			}
		}
		return fmt.Errorf("%s", strings.Join(msgs, "\n"))
	}
	msg := err.Error()
	if out := yamlLine().ReplaceAllString(msg, name+":$1: "); out != msg {
		return fmt.Errorf("%s", out)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// recordLines copies the line numbers of sites, bindings and applications
// from the node tree into cfg (decoded from the same document).
func recordLines(cfg *Config, root *yaml.Node) {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	cfg.ACME.recordLines(doc)
	sites := mapValue(doc, "sites")
	if sites == nil || sites.Kind != yaml.SequenceNode {
		return
	}
	for i, sn := range sites.Content {
		if i >= len(cfg.Sites) {
			break
		}
		s := &cfg.Sites[i]
		s.Line = sn.Line
		if bs := mapValue(sn, "bindings"); bs != nil {
			for j, bn := range bs.Content {
				if j < len(s.Bindings) {
					s.Bindings[j].Line = bn.Line
				}
			}
		}
		if as := mapValue(sn, "applications"); as != nil {
			for j, an := range as.Content {
				if j < len(s.Applications) {
					s.Applications[j].Line = an.Line
				}
			}
		}
	}
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func (c *Config) resolvePaths(base string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.GlobalRules = abs(c.GlobalRules)
	c.ACME.resolvePaths(abs)
	for i := range c.Sites {
		s := &c.Sites[i]
		s.AccessLog.Path = abs(s.AccessLog.Path)
		s.Authentication.Keytab = abs(s.Authentication.Keytab)
		s.Authentication.UserFile = abs(s.Authentication.UserFile)
		s.Authentication.GroupFile = abs(s.Authentication.GroupFile)
		s.Authentication.Directory.CAFile = abs(s.Authentication.Directory.CAFile)
		s.Authentication.Directory.BindPasswordFile = abs(s.Authentication.Directory.BindPasswordFile)
		s.Authentication.Directory.BindKeytab = abs(s.Authentication.Directory.BindKeytab)
		for j := range s.Bindings {
			b := &s.Bindings[j]
			b.CertificateFile = abs(b.CertificateFile)
			b.KeyFile = abs(b.KeyFile)
			b.ClientCAFile = abs(b.ClientCAFile)
		}
		for j := range s.Applications {
			s.Applications[j].Dir = abs(s.Applications[j].Dir)
			s.Applications[j].WorkingDirectory = abs(s.Applications[j].WorkingDirectory)
		}
	}
}

func (c *Config) applyDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Limits.MaxRequestBytes, DefaultMaxRequestBytes)
	def(&c.Limits.MaxURL, DefaultMaxURL)
	def(&c.Limits.MaxQueryString, DefaultMaxQueryString)
	// MaxConnections and MaxConnectionsPerClient 0 stay: the front door
	// sizes the limits (automatic).
	if c.Limits.MaxAllowedContentLength == 0 {
		c.Limits.MaxAllowedContentLength = DefaultMaxAllowedContentLength
	}
	if c.Timeouts.Header == 0 {
		c.Timeouts.Header = DefaultHeaderTimeout
	}
	if c.Timeouts.Body == 0 {
		c.Timeouts.Body = DefaultBodyTimeout
	}
	if c.Timeouts.Idle == 0 {
		c.Timeouts.Idle = DefaultIdleTimeout
	}
	if c.Timeouts.WebSocket == 0 {
		c.Timeouts.WebSocket = DefaultWebSocketTimeout
	}
	if c.Timeouts.Send == 0 {
		c.Timeouts.Send = DefaultSendTimeout
	}
	if c.Timeouts.DeferAccept == 0 {
		c.Timeouts.DeferAccept = DefaultDeferAccept
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	c.Compression.applyDefaults()
	if c.TLS.MinVersion == "" {
		c.TLS.MinVersion = "1.2"
	}
	for i := range c.Sites {
		s := &c.Sites[i]
		if s.AccessLog.Path != "" && s.AccessLog.Format == "" {
			s.AccessLog.Format = "w3c"
		}
		for j := range s.Applications {
			s.Applications[j].Pool.applyDefaults()
		}
		for j := range s.Bindings {
			b := &s.Bindings[j]
			b.Scheme = strings.ToLower(b.Scheme)
			b.Host = strings.ToLower(b.Host)
			if b.Address == "*" {
				b.Address = ""
			}
			if b.Name == "" {
				b.Name = s.Name + "/" + strconv.Itoa(j)
			}
			if b.Scheme == "https" && b.ClientCertificate == "" {
				b.ClientCertificate = ClientCertNone
			}
		}
	}
}

// TLSMinVersion returns the tls.Version* constant of c.TLS.MinVersion.
func (c *Config) TLSMinVersion() uint16 {
	if c.TLS.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
