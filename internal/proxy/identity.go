package proxy

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// The identity headers: who the front door's authentication stage found
// the caller to be. Like every MS-ASPNETCORE-* header, a client's copies
// are removed before they are set, so the app can trust them on a request
// that carries the pairing token.
const (
	// HeaderUser is the user: "alice@EXAMPLE.COM" (Negotiate/Kerberos) or
	// the Basic user name.
	HeaderUser = "Ms-Aspnetcore-User"
	// HeaderAuthType is the scheme: "Negotiate" or "Basic".
	HeaderAuthType = "Ms-Aspnetcore-Authtype"
	// HeaderGroups lists the groups, comma-separated: the Windows groups of
	// an Active Directory ticket's PAC by name (DOMAIN\Group; a SID where
	// the directory could not name it), then group names from the site's
	// group file. Absent when there are none.
	HeaderGroups = "Ms-Aspnetcore-Groups"
	// HeaderGroupSIDs lists the SIDs of the Windows groups, comma-separated
	// (the PAC's, then the well-known ones a Windows token carries).
	// Absent without a PAC.
	HeaderGroupSIDs = "Ms-Aspnetcore-Groupsids"
)

// setIdentity sets the identity headers on out for id. Each value is
// percent-encoded UTF-8: bytes outside printable ASCII, '%' and ',' are
// written %XX, so names in any script survive every HTTP stack and a
// comma always separates groups.
func setIdentity(out fieldSink, id *pipeline.Identity) {
	out.add(HeaderUser, encodeIdentity(id.Name))
	out.add(HeaderAuthType, id.Scheme)
	if len(id.Groups) > 0 {
		g := make([]string, len(id.Groups))
		for i, v := range id.Groups {
			g[i] = encodeIdentity(v)
		}
		out.add(HeaderGroups, strings.Join(g, ","))
	}
	if len(id.GroupSIDs) > 0 {
		out.add(HeaderGroupSIDs, strings.Join(id.GroupSIDs, ","))
	}
}

func encodeIdentity(s string) string {
	const hex = "0123456789ABCDEF"
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 && c != ' ' || c > 0x7e || c == '%' || c == ',' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 && c != ' ' || c > 0x7e || c == '%' || c == ',' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
