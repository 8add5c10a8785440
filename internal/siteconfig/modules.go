package siteconfig

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// RequestFiltering is the server-level part of IIS request filtering.
type RequestFiltering struct {
	// DisableServerDefaults (disableServerDefaults, default false): by
	// default every app gets the lists IIS's applicationHost.config gives
	// every site, which the app's web.config edits with <remove> and
	// <clear/>: the hidden segments bin, App_code, App_GlobalResources,
	// App_LocalResources, App_WebReferences, App_Data, App_Browsers and
	// web.config (404.8), and the file extensions .config, .cs, .csproj,
	// .mdf, .ldf, .resx, .licx and the others of that list (404.7; see
	// "gatehouse check"). Set this to filter with the web.config alone.
	DisableServerDefaults bool `yaml:"disableServerDefaults" json:"disableServerDefaults,omitempty"`
}

// Compression is the site-wide part of IIS dynamic compression (what
// applicationHost.config's <httpCompression> holds under IIS). An app
// compresses when its web.config says <urlCompression
// doDynamicCompression="true"/>, or, without that element, when Dynamic is
// set. Zero values mean the defaults below.
type Compression struct {
	// Dynamic (dynamic, default false) compresses the responses of apps
	// whose web.config has no <urlCompression>, as an IIS server with the
	// Dynamic Compression module installed does.
	Dynamic bool `yaml:"dynamic" json:"dynamic"`
	// Types (types, default IIS's dynamicTypes: text/*, message/*,
	// application/javascript, application/x-javascript, application/json,
	// application/atom+xml, application/xaml+xml) are the media types
	// compressed; "type/*" matches a whole type and "*/*" every type (but
	// text/event-stream, never compressed). Parameters (charset) are
	// ignored.
	Types []string `yaml:"types" json:"types"`
	// Encodings (encodings, "gzip", "br", "zstd"; default [gzip, br, zstd])
	// are offered in this order of preference: the client's highest q-value
	// wins, ties go to the earlier one here.
	Encodings []string `yaml:"encodings" json:"encodings"`
	// GzipLevel (gzipLevel, 1–9, default 5), BrotliLevel (brotliLevel, 0–11,
	// default 4), ZstdLevel (zstdLevel, 1–4 = fastest … best, default 1).
	GzipLevel   int `yaml:"gzipLevel" json:"gzipLevel"`
	BrotliLevel int `yaml:"brotliLevel" json:"brotliLevel"`
	ZstdLevel   int `yaml:"zstdLevel" json:"zstdLevel"`
	// MinSize (minSize, bytes, default 2700 = IIS minFileSizeForComp): a
	// response whose Content-Length is smaller is sent as is. Responses of
	// unknown length are compressed.
	MinSize int64 `yaml:"minSize" json:"minSize"`
}

// DefaultCompressionTypes is IIS's default <dynamicTypes> list.
var DefaultCompressionTypes = []string{
	"text/*", "message/*", "application/x-javascript", "application/javascript",
	"application/json", "application/atom+xml", "application/xaml+xml",
}

// Compression defaults.
const (
	DefaultGzipLevel           = 5
	DefaultBrotliLevel         = 4
	DefaultZstdLevel           = 1
	DefaultCompressionMinSize  = 2700
	defaultCompressionEncoding = "gzip"
)

// WithDefaults returns c with the defaults filled in where it has zero
// values (Parse and Single do this already).
func (c Compression) WithDefaults() Compression {
	c.Types = append([]string(nil), c.Types...)
	c.Encodings = append([]string(nil), c.Encodings...)
	c.applyDefaults()
	return c
}

func (c *Compression) applyDefaults() {
	if len(c.Types) == 0 {
		c.Types = append([]string(nil), DefaultCompressionTypes...)
	}
	if len(c.Encodings) == 0 {
		c.Encodings = []string{defaultCompressionEncoding, "br", "zstd"}
	}
	for i, e := range c.Encodings {
		c.Encodings[i] = strings.ToLower(strings.TrimSpace(e))
	}
	for i, t := range c.Types {
		c.Types[i] = strings.ToLower(strings.TrimSpace(t))
	}
	if c.GzipLevel == 0 {
		c.GzipLevel = DefaultGzipLevel
	}
	if c.BrotliLevel == 0 {
		c.BrotliLevel = DefaultBrotliLevel
	}
	if c.ZstdLevel == 0 {
		c.ZstdLevel = DefaultZstdLevel
	}
	if c.MinSize == 0 {
		c.MinSize = DefaultCompressionMinSize
	}
}

func (c *Compression) check() []string {
	var msgs []string
	seen := map[string]bool{}
	for _, e := range c.Encodings {
		if e != "gzip" && e != "br" && e != "zstd" {
			msgs = append(msgs, fmt.Sprintf("compression.encodings: %q is not gzip, br or zstd", e))
		}
		if seen[e] {
			msgs = append(msgs, fmt.Sprintf("compression.encodings: %q listed twice", e))
		}
		seen[e] = true
	}
	for _, t := range c.Types {
		if i := strings.IndexByte(t, '/'); i <= 0 || i == len(t)-1 {
			msgs = append(msgs, fmt.Sprintf("compression.types: %q is not a media type (type/subtype or type/*)", t))
		}
	}
	if c.GzipLevel < 1 || c.GzipLevel > 9 {
		msgs = append(msgs, fmt.Sprintf("compression.gzipLevel %d: want 1–9", c.GzipLevel))
	}
	if c.BrotliLevel < 0 || c.BrotliLevel > 11 {
		msgs = append(msgs, fmt.Sprintf("compression.brotliLevel %d: want 0–11", c.BrotliLevel))
	}
	if c.ZstdLevel < 1 || c.ZstdLevel > 4 {
		msgs = append(msgs, fmt.Sprintf("compression.zstdLevel %d: want 1–4", c.ZstdLevel))
	}
	if c.MinSize < 0 {
		msgs = append(msgs, "compression.minSize: must not be negative")
	}
	return msgs
}

// TrustedProxyPrefixes returns TrustedProxies as prefixes; a single address
// is a prefix of all its bits. Entries that do not parse are left out
// (Validate reports them).
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits is how many prefix bits the ::ffff: of a 4-in-6 address takes.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// Upstreams returns ProxyUpstreams as the rewrite rules compare them: lower
// case, IPv6 addresses in brackets.
func (c *Config) Upstreams() []string {
	var out []string
	for _, s := range c.ProxyUpstreams {
		if host, port, err := net.SplitHostPort(strings.TrimSpace(s)); err == nil {
			out = append(out, strings.ToLower(net.JoinHostPort(host, port)))
		}
	}
	return out
}

func (c *Config) checkUpstreams() []string {
	var msgs []string
	for _, s := range c.ProxyUpstreams {
		host, port, err := net.SplitHostPort(strings.TrimSpace(s))
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 || strings.ContainsAny(host, "/?#@ ") {
			msgs = append(msgs, fmt.Sprintf("proxyUpstreams: %q is not host:port (such as 127.0.0.1:3000)", s))
		}
	}
	return msgs
}

func (c *Config) checkTrustedProxies() []string {
	var msgs []string
	for _, s := range c.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			msgs = append(msgs, fmt.Sprintf("trustedProxies: %q is not an IP address or CIDR prefix", s))
		}
	}
	return msgs
}
