package directory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// wellKnown are the SIDs every Windows token of a domain user logged on
// over the network carries besides the PAC's groups, with the names
// Windows gives them. An Active Directory PAC does not list them (the
// server adds them when it builds the token), so Gatehouse adds them too.
var wellKnown = []struct{ sid, name string }{
	{"S-1-1-0", "Everyone"},
	{"S-1-5-2", `NT AUTHORITY\NETWORK`},
	{"S-1-5-11", `NT AUTHORITY\Authenticated Users`},
	{"S-1-5-15", `NT AUTHORITY\This Organization`},
	{"S-1-5-32-545", `BUILTIN\Users`},
}

// wellKnownNames names SIDs the directory does not hold (or holds under
// another name), including those a PAC may carry in its extra SIDs.
var wellKnownNames = map[string]string{
	"S-1-18-1": "Authentication authority asserted identity",
	"S-1-18-2": "Service asserted identity",
}

func init() {
	for _, w := range wellKnown {
		wellKnownNames[w.sid] = w.name
	}
}

// TokenSIDs returns the SIDs Windows adds to the token of a domain user
// logged on over the network: Everyone, NETWORK, Authenticated Users, This
// Organization, BUILTIN\Users.
func TokenSIDs() []string {
	out := make([]string, len(wellKnown))
	for i, w := range wellKnown {
		out[i] = w.sid
	}
	return out
}

// WellKnownName returns the Windows name of a well-known SID (Everyone,
// NT AUTHORITY\…, BUILTIN\Users, the asserted-identity SIDs), and whether
// sid is one.
func WellKnownName(sid string) (string, bool) {
	n, ok := wellKnownNames[strings.ToUpper(sid)]
	return n, ok
}

// sidBytes encodes a SID string ("S-1-5-21-…") in the binary form of the
// objectSid attribute (MS-DTYP 2.4.2.2): revision, count of
// sub-authorities, the 48-bit authority big-endian, then each
// sub-authority as 32 bits little-endian.
func sidBytes(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "S") || parts[1] != "1" {
		return nil, fmt.Errorf("%q is not a SID", s)
	}
	subs := parts[3:]
	if len(subs) > 15 {
		return nil, fmt.Errorf("SID %q has more than 15 sub-authorities", s)
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, fmt.Errorf("SID %q: authority: %w", s, err)
	}
	b := make([]byte, 8, 8+4*len(subs))
	b[0], b[1] = 1, byte(len(subs))
	for i := range 6 {
		b[2+i] = byte(auth >> (8 * (5 - i)))
	}
	for _, p := range subs {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("SID %q: sub-authority: %w", s, err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, nil
}

// sidString decodes the binary form of a SID (objectSid).
func sidString(b []byte) (string, error) {
	if len(b) < 8 || b[0] != 1 || len(b) != 8+4*int(b[1]) {
		return "", errors.New("malformed binary SID")
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	var sb strings.Builder
	sb.WriteString("S-1-")
	sb.WriteString(strconv.FormatUint(auth, 10))
	for i := 8; i < len(b); i += 4 {
		sb.WriteByte('-')
		sb.WriteString(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[i:])), 10))
	}
	return sb.String(), nil
}

// sidFilter is an LDAP filter matching any of the SIDs (binary, escaped
// byte by byte as RFC 4515 requires).
func sidFilter(sids [][]byte) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.WriteString("(|")
	for _, s := range sids {
		b.WriteString("(objectSid=")
		for _, c := range s {
			b.WriteByte('\\')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
		b.WriteByte(')')
	}
	b.WriteByte(')')
	return b.String()
}
