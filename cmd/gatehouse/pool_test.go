package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

func TestAppPoolMapping(t *testing.T) {
	t.Parallel()
	mask := siteconfig.Umask(0o027)
	p := siteconfig.Pool{
		User: "root", AllowRoot: true, Groups: []string{},
		Umask:            &mask,
		WorkingDirectory: "/srv",
		Recycling: siteconfig.Recycling{Time: time.Hour, Schedule: []string{"03:00", "15:30:10"}, Requests: 7,
			PrivateMemory: 1 << 20, PrivateMemoryWindow: time.Second},
		Limits: siteconfig.AppLimits{Memory: 2 << 20, CPU: 150, Processes: 9},
	}
	ap, err := appPool(p, nil, "a/", false)
	if err != nil {
		t.Fatal(err)
	}
	if ap.Identity == nil || ap.Identity.UID != 0 || !ap.Identity.AllowRoot || len(ap.Identity.Groups) != 0 {
		t.Errorf("identity %+v", ap.Identity)
	}
	if ap.Umask == nil || *ap.Umask != 0o027 || ap.WorkDir != "/srv" {
		t.Errorf("umask %v workdir %q", ap.Umask, ap.WorkDir)
	}
	r := ap.Recycling
	if r.Time != time.Hour || r.Requests != 7 || r.PrivateMemory != 1<<20 || r.PrivateMemoryWindow != time.Second ||
		len(r.Schedule) != 2 || r.Schedule[1] != 15*time.Hour+30*time.Minute+10*time.Second {
		t.Errorf("recycling %+v", r)
	}
	if l := ap.Limits; l.Memory != 2<<20 || l.CPUPercent != 150 || l.Processes != 9 {
		t.Errorf("limits %+v", l)
	}
	desc, err := describePool(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"user root (uid 0, gid 0)", "umask 0027", "recycle at 03:00, 15:30:10", "recycle after 7 requests", "cpu 150%"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describePool = %q, want it to say %q", desc, want)
		}
	}
	if _, err := appPool(siteconfig.Pool{User: "root"}, nil, "a/", false); err == nil {
		t.Error("root without allowRoot was accepted")
	}
}

// TestImplicitRootRefused: an app that sets no user would run as Gatehouse's
// own user; as root that needs allowRoot or --allow-root.
func TestImplicitRootRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("gatehouse does not run as root here: no app can run as root implicitly")
	}
	_, err := appPool(siteconfig.Pool{}, nil, "shop/", false)
	if err == nil || !strings.Contains(err.Error(), "app shop/ would run as root") || !strings.Contains(err.Error(), "allowRoot") {
		t.Errorf("implicit root: err = %v, want a refusal naming the app and allowRoot", err)
	}
	if _, err := appPool(siteconfig.Pool{AllowRoot: true}, nil, "shop/", false); err != nil {
		t.Errorf("allowRoot in the application entry: %v", err)
	}
	if _, err := appPool(siteconfig.Pool{}, nil, "shop/", true); err != nil {
		t.Errorf("--allow-root: %v", err)
	}
}
