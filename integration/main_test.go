package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperEnv selects a helper mode when the test binary is re-executed.
const helperEnv = "INTEGRATION_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	goleak.VerifyTestMain(m)
}

// runHelper is the body of a re-executed test binary. Mode "activated"
// serves on Listen (expected to come from LISTEN_FDS) with token "tok" and
// answers every request with its pid and the LISTEN_FDS it still sees,
// until the shutdown request arrives.
func runHelper(mode string) int {
	if mode != "activated" {
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 2
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid=%d LISTEN_FDS=%q", os.Getpid(), os.Getenv(EnvListenFDs))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Serve(ctx, h, ServeOptions{Listener: ln, Config: &Config{Token: "tok"}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
