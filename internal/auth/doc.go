// Package auth is the front door's authentication and authorization stage,
// IIS's anonymous, Windows (Negotiate) and Basic authentication modules and
// its URL Authorization module, rebuilt for Linux:
//
//   - Negotiate (SPNEGO) with Kerberos only, checked against a keytab with
//     gokrb5 (no cgo): ticket and authenticator decrypted and checked,
//     clock skew limited, authenticators remembered against replay, the
//     mutual-authentication token (AP-REP) sent back when the client asks
//     for it. An Active Directory PAC names the user as IIS does
//     (DOMAIN\user, or as the site's userNameFormat says) and gives the
//     group SIDs, to which the well-known SIDs of a Windows token are
//     added; the site's directory (package directory) names them
//     DOMAIN\Group. NTLM is refused (401.1), never passed to the app.
//   - Basic against an htpasswd file holding bcrypt hashes only, over TLS
//     unless the site allows cleartext.
//   - URL Authorization rules (<authorization>) evaluated as IIS does:
//     every Deny rule first, then every Allow rule, parent scopes before
//     child ones; no match denies. users= matches any of the user's
//     names, roles= a group's name with or without its domain, or its SID.
//
// The settings come from the app's web.config (<security>, also in
// <location path="…"> scopes of the same file) laid over the site's
// defaults (Settings.Schemes). The identity found goes on
// pipeline.Request.Identity; the forwarder hands it to the app.
//
// A Negotiate login holds for the rest of its client connection
// (pipeline.Request.Conn, as IIS's authPersistNonNTLM), unless the request
// was relayed by a trusted proxy or the site asks for per-request
// authentication; it is never shared between connections.
package auth
