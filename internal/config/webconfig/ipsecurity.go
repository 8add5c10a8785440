package webconfig

import (
	"encoding/xml"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// ipSecurity reads <security><ipSecurity> into p.app.IPSecurity.
func (p *parser) ipSecurity(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, "allowUnlisted", "denyAction", "enableProxyMode", "enableReverseDns")
	if err != nil {
		return err
	}
	ips := p.app.IPSecurity
	if ips == nil {
		ips = &config.IPSecurity{AllowUnlisted: true, DenyAction: "Forbidden"}
		p.app.IPSecurity = ips
	}
	if err := p.boolAttr(t, se, attrs, "allowUnlisted", &ips.AllowUnlisted); err != nil {
		return err
	}
	if err := p.oneOf(t, se, attrs, "denyAction", &ips.DenyAction, "Unauthorized", "Forbidden", "NotFound", "AbortRequest"); err != nil {
		return err
	}
	var proxyMode, reverseDNS bool
	if err := p.boolAttr(t, se, attrs, "enableProxyMode", &proxyMode); err != nil {
		return err
	}
	if err := p.boolAttr(t, se, attrs, "enableReverseDns", &reverseDNS); err != nil {
		return err
	}
	if proxyMode {
		p.unsupportedAttr(t, "ipSecurity", "enableProxyMode", "differs: X-Forwarded-For is believed only from the site config's trustedProxies, whatever this says")
	}
	if reverseDNS {
		p.unsupportedAttr(t, "ipSecurity", "enableReverseDns", "not supported: rules by domain name are not supported")
	}
	old := ips.Rules
	entries, err := p.ipCollection(keysOf(old, func(r config.IPRule) string { return r.Prefix.String() }))
	if err != nil {
		return err
	}
	ips.Rules = nil
	for _, e := range entries {
		if e.from > 0 {
			ips.Rules = append(ips.Rules, old[e.from-1])
			continue
		}
		if e.has("domainName") {
			p.unsupported(e.t.line, "ipSecurity><add domainName=\""+e.get("domainName")+"\"", "not supported: rules by domain name are NOT applied")
			continue
		}
		prefix, err := ipPrefix(e.get("ipAddress"), e.get("subnetMask"))
		if err != nil {
			line := p.attrLine(e.t, "ipAddress")
			attr := "ipAddress"
			if e.has("subnetMask") && strings.Contains(err.Error(), "subnetMask") {
				line, attr = p.attrLine(e.t, "subnetMask"), "subnetMask"
			}
			return p.errorf(line, "add", attr, "%v", err)
		}
		allowed := false
		if err := p.boolAttr(e.t, e.se, e.attrs, "allowed", &allowed); err != nil {
			return err
		}
		ips.Rules = append(ips.Rules, config.IPRule{Prefix: prefix, Allowed: allowed})
	}
	p.applied("ipSecurity", ips.Summary())
	return nil
}

// dynamicIPSecurity reads <security><dynamicIpSecurity> into
// p.app.DynamicIPSecurity.
func (p *parser) dynamicIPSecurity(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, "denyAction", "enableProxyMode", "enableLoggingOnlyMode")
	if err != nil {
		return err
	}
	d := p.app.DynamicIPSecurity
	if d == nil {
		d = &config.DynamicIPSecurity{DenyAction: "Forbidden"}
		p.app.DynamicIPSecurity = d
	}
	if err := p.oneOf(t, se, attrs, "denyAction", &d.DenyAction, "Unauthorized", "Forbidden", "NotFound", "AbortRequest"); err != nil {
		return err
	}
	var proxyMode bool
	if err := p.boolAttr(t, se, attrs, "enableProxyMode", &proxyMode); err != nil {
		return err
	}
	if err := p.boolAttr(t, se, attrs, "enableLoggingOnlyMode", &d.LoggingOnly); err != nil {
		return err
	}
	if proxyMode {
		p.unsupportedAttr(t, "dynamicIpSecurity", "enableProxyMode", "differs: X-Forwarded-For is believed only from the site config's trustedProxies, whatever this says")
	}
	err = p.children(func(t token, se xml.StartElement) error {
		var enabled bool
		switch se.Name.Local {
		case "denyByConcurrentRequests":
			attrs, err := p.attrs(t, se, "enabled", "maxConcurrentRequests")
			if err != nil {
				return err
			}
			n := int64(5)
			if err := p.boolAttr(t, se, attrs, "enabled", &enabled); err != nil {
				return err
			}
			if err := p.uintAttr(t, se, attrs, "maxConcurrentRequests", math.MaxInt32, &n); err != nil {
				return err
			}
			d.MaxConcurrentRequests = 0
			if enabled {
				d.MaxConcurrentRequests = int(max(n, 1))
			}
		case "denyByRequestRate":
			attrs, err := p.attrs(t, se, "enabled", "maxRequests", "requestIntervalInMilliseconds")
			if err != nil {
				return err
			}
			n, ms := int64(20), int64(200)
			if err := p.boolAttr(t, se, attrs, "enabled", &enabled); err != nil {
				return err
			}
			if err := p.uintAttr(t, se, attrs, "maxRequests", math.MaxInt32, &n); err != nil {
				return err
			}
			if err := p.uintAttr(t, se, attrs, "requestIntervalInMilliseconds", math.MaxInt32, &ms); err != nil {
				return err
			}
			d.MaxRequests, d.RequestInterval = 0, 0
			if enabled {
				d.MaxRequests, d.RequestInterval = int(max(n, 1)), time.Duration(max(ms, 1))*time.Millisecond
			}
		default:
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <dynamicIpSecurity> (known: denyByConcurrentRequests, denyByRequestRate)")
		}
		return p.skip()
	})
	if err != nil {
		return err
	}
	p.applied("dynamicIpSecurity", d.Summary())
	return nil
}

// ipCollection reads the <add>, <remove> and <clear/> of <ipSecurity>,
// starting from the inherited keys. Entries are keyed by their prefix
// (ipAddress with subnetMask, "10.0.0.0/8"), or by domainName.
func (p *parser) ipCollection(inherited []string) ([]entry, error) {
	out := make([]entry, 0, len(inherited))
	for i, k := range inherited {
		out = append(out, entry{key: k, from: i + 1})
	}
	keyOf := func(attrs map[string]xml.Attr) string {
		if d, ok := attrs["domainName"]; ok {
			return "dns:" + strings.ToLower(d.Value)
		}
		if pfx, err := ipPrefix(attrs["ipAddress"].Value, attrs["subnetMask"].Value); err == nil {
			return pfx.String()
		}
		return attrs["ipAddress"].Value + "/" + attrs["subnetMask"].Value // reported when the entry is read
	}
	same := func(a, b string) bool { return a == b }
	err := p.children(func(t token, se xml.StartElement) error {
		switch se.Name.Local {
		case "add", "remove":
			names := []string{"ipAddress", "subnetMask", "domainName", "allowed"}
			if se.Name.Local == "remove" {
				names = names[:3]
			}
			attrs, err := p.attrs(t, se, names...)
			if err != nil {
				return err
			}
			_, ip := attrs["ipAddress"]
			_, dns := attrs["domainName"]
			if !ip && !dns {
				return p.errorf(t.line, se.Name.Local, "ipAddress", "required attribute is missing (or domainName)")
			}
			k := keyOf(attrs)
			if se.Name.Local == "remove" {
				out = without(out, k, same)
				break
			}
			if err := p.unique(t, "ipSecurity", "ipAddress", strings.TrimPrefix(k, "dns:"), out, func(a, b string) bool { return strings.TrimPrefix(a, "dns:") == b }); err != nil {
				return err
			}
			out = append(out, entry{t: t, se: se, attrs: attrs, key: k})
		case "clear":
			if _, err := p.attrs(t, se); err != nil {
				return err
			}
			out = out[:0]
		default:
			return p.errorf(t.line, se.Name.Local, "", "unknown element in <ipSecurity> (known: add, remove, clear)")
		}
		return p.skip()
	})
	return out, err
}

// ipPrefix turns IIS's ipAddress and subnetMask ("10.0.0.0",
// "255.0.0.0"; IPv6 masks are a prefix length, "64") into a prefix. An
// empty mask means the single address.
func ipPrefix(addr, mask string) (netip.Prefix, error) {
	ip, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", addr)
	}
	ip = ip.Unmap()
	mask = strings.TrimSpace(mask)
	if mask == "" {
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	bits := -1
	if n, err := strconv.Atoi(mask); err == nil && n >= 0 && n <= ip.BitLen() {
		bits = n
	} else if m, err := netip.ParseAddr(mask); err == nil && m.Is4() == ip.Is4() {
		bits = maskBits(m.AsSlice())
	}
	if bits < 0 {
		return netip.Prefix{}, fmt.Errorf("subnetMask %q is not a mask for %s (e.g. 255.255.255.0, or a prefix length)", mask, ip)
	}
	return netip.PrefixFrom(ip, bits).Masked(), nil
}

// maskBits returns the length of a contiguous netmask, -1 if it is not one.
func maskBits(m []byte) int {
	n := 0
	for i, b := range m {
		if b == 0xff {
			n += 8
			continue
		}
		for b&0x80 != 0 {
			n++
			b <<= 1
		}
		if b != 0 {
			return -1
		}
		for _, rest := range m[i+1:] {
			if rest != 0 {
				return -1
			}
		}
		return n
	}
	return n
}
