package main

import (
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// TestMain lets this test binary play the socket-activation shim and the
// keeper, as the real binary does, should a test start either.
func TestMain(m *testing.M) {
	if supervisor.ShimMain() {
		os.Exit(127)
	}
	if supervisor.KeeperMain() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}
