package auth

import (
	"encoding/base64"
	"io"
	"log"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// FuzzNegotiateToken feeds client tokens to the Negotiate check: whatever
// the bytes, the answer is an error (a 401), never a panic.
func FuzzNegotiateToken(f *testing.F) {
	kt := keytab.New()
	if err := kt.AddEntry("HTTP/localhost", "GH.TEST", "secret", time.Now(), 1, 18); err != nil {
		f.Fatal(err)
	}
	n := &negotiator{kt: kt, skew: time.Minute, seen: newReplayCache(), pacLog: log.New(io.Discard, "", 0)}
	for _, s := range []string{
		"", "oQcwBaADCgEC", "YIIBBgYGKwYBBQUCoIH7MIH4oDAwLgYJKoZIgvcSAQICBgkqhkiG9xIBAgIGCisGAQQBgjcCAh4GCisGAQQBgjcCAgqigcMEgcBgga0GCSqGSIb3EgECAgEAboGdMIGaoAMCAQWhAwIBDqIHAwUAIAAAAKNgYV4wXKADAgEFoQkbB0dILlRFU1SiHDAaoAMCAQOhEzARGwRIVFRQGwlsb2NhbGhvc3Q=",
		base64.StdEncoding.EncodeToString([]byte("NTLMSSP\x00\x01\x00\x00\x00")),
		base64.StdEncoding.EncodeToString([]byte{0x60, 0x80, 0x06, 0x06}),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if id, err := n.accept(tok, "127.0.0.1"); err == nil {
			t.Fatalf("token %q accepted as %+v", tok, id)
		}
	})
}
