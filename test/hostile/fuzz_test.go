package hostile_test

import (
	"net"
	"testing"
	"time"
)

// FuzzFrontDoor sends arbitrary bytes (then a request for /__end) over
// TCP to the front door, with a real forwarder and recording apps behind
// it, and checks what must hold for any input (see checkCase, "fuzz"):
// the front door and the app never disagree where a request ends, and
// nothing spoofed reaches the app. The seeds are the corpus cases. Each
// fuzzing worker runs its own front door, with short timeouts so that
// inputs that stop midway end quickly.
func FuzzFrontDoor(f *testing.F) {
	cases, err := loadCorpus("testdata/http1.corpus")
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		f.Add([]byte(c.Raw))
	}
	fd := startFrontDoor(f, "{header: 300ms, body: 300ms, idle: 300ms}")
	f.Fuzz(func(t *testing.T, raw []byte) {
		fd.settle(t)
		for _, a := range fd.apps {
			a.reset()
		}
		fd.logs.Reset()
		resps, closed, err := exchange(func() (net.Conn, error) { return net.DialTimeout("tcp", fd.addr, 5*time.Second) }, string(raw), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fd.settle(t)
		checkCase(t, fd, &corpusCase{Name: "fuzz", Raw: string(raw), File: "fuzz", Want: "fuzz"}, "fuzz", resps, closed)
	})
}
