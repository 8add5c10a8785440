package proxy

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/h1"
)

// plainHeader hides an *h1.Header's type, so that upgradeOf takes the
// generic path (Get, then Values) that its h1 case stands for.
type plainHeader struct{ *h1.Header }

// TestUpgradeOfH1 compares upgradeOf on an *h1.Header (its names compared
// by h1.FoldIs) with the generic path (h1.Header.Get, strings.EqualFold),
// on Upgrade names in any case, near misses, non-ASCII spellings, repeated
// Upgrade fields and with and without Connection: upgrade.
func TestUpgradeOfH1(t *testing.T) {
	t.Parallel()
	names := []string{"Upgrade", "upgrade", "UPGRADE", "uPgRaDe", "Upgrad", "Upgrades", "Up-grade",
		"Upgrade ", "Upgr\u00e2de", "\u212apgrade", "Upgr\u017fde", "Host", "", "Upgrade\x00"}
	for _, name := range names {
		for _, conn := range []string{"", "upgrade", "keep-alive, Upgrade", "close"} {
			for _, second := range []string{"", "h2c"} {
				hdr := &h1.Header{}
				hdr.Add("Host", "example.com")
				hdr.Add(name, "websocket")
				if second != "" {
					hdr.Add("UPGRADE", second)
				}
				if conn != "" {
					hdr.Add("Connection", conn)
				}
				if got, want := upgradeOf(hdr), upgradeOf(plainHeader{hdr}); got != want {
					t.Errorf("name %q, Connection %q, second %q: upgradeOf = %q, the generic path %q", name, conn, second, got, want)
				}
			}
		}
	}
}
