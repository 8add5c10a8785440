// Command benchtool holds the measurements of bench/run.sh that wrk and
// h2load cannot make. It is not part of go test; run.sh builds and runs it.
//
//	benchtool idle -addr HOST:PORT -n 1000 -pids 12,13
//	    RSS of the pids before and after opening n keep-alive connections,
//	    each of which made one GET / and now sits idle.
//	benchtool stream -url URL -pids 12,13
//	    downloads URL (say /big?n=1073741824) and samples the pids' RSS
//	    every 20 ms while it streams.
//	benchtool coldstart -app "testapp -no-token-check" -gatehouse LABEL=BIN=DIR -n 15 -restarts 3
//	    the app's own time from exec to its first answer, Gatehouse's time
//	    from start to the first proxied answer (the app starts on that
//	    request), and the time from kill -9 of the app to the answer to a
//	    request sent at once on a new connection.
//	benchtool flood -http URL [-https URL -ca FILE] -flood ws|h2 -probe h1|h2
//	    the median latency of GET / on one connection alone and while another
//	    connection echoes messages through the app as fast as it can, in
//	    interleaved rounds, and their ratio.
//	benchtool startup -n 10 -target "gatehouse=127.0.0.1:8080=BIN serve …" -target "nginx=…"
//	    what an outside launcher sees of each server: the time from exec to
//	    the first successful connect, and to the answer to GET / sent on
//	    that connection.
//	benchtool h3 -url https://127.0.0.1:PORT/ -ca FILE -c 10 -m 10 -d 5s [-pids 12,13]
//	    HTTP/3 load (quic-go): c connections with m requests in flight each,
//	    for d after a warm-up; req/s, p50/p99 and CPU per request of pids.
//	benchtool tls -addr 127.0.0.1:PORT -ca FILE -w 8 -d 5s [-pids 12,13]
//	    new TLS connections per second, each with one GET /: full handshakes,
//	    then resumed ones (session tickets), with the count that resumed.
//	benchtool grpc -addr HOST:PORT -mode unary|stream -pids 12,13 [-conns 4 -workers 32 -dur 5s]
//	    a gRPC load (grpc-go's client, h2c) on grpc-go's interop server
//	    behind a front door: calls per second and the front door's CPU
//	    time per call.
//	benchtool gets -addr HOST:PORT -n 20000 -c 50 [-close]
//	    exactly n keep-alive GET / over c connections (with -close: each
//	    on a new connection, "Connection: close", from c clients), every
//	    answer checked: a fixed amount of work (bench/instructions.sh).
//
// Every result is one line "key value" on stdout, for run.sh to collect.
// Loopback only; every wait is bounded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: benchtool idle|stream|coldstart|flood|startup|h3|tls|grpc|gets [flags]")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute) // nothing here runs longer
	defer cancel()
	switch args[0] {
	case "idle":
		return runIdle(ctx, args[1:], os.Stdout)
	case "stream":
		return runStream(ctx, args[1:], os.Stdout)
	case "coldstart":
		return runColdstart(ctx, args[1:], os.Stdout)
	case "flood":
		return runFlood(ctx, args[1:], os.Stdout)
	case "startup":
		return runStartup(ctx, args[1:], os.Stdout)
	case "h3":
		return runH3(ctx, args[1:], os.Stdout)
	case "tls":
		return runTLS(ctx, args[1:], os.Stdout)
	case "grpc":
		return runGRPC(ctx, args[1:], os.Stdout)
	case "gets":
		return runGets(ctx, args[1:], os.Stdout)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// result prints one "key value" line.
func result(w io.Writer, key string, format string, args ...any) {
	fmt.Fprintf(w, "%s %s\n", key, fmt.Sprintf(format, args...))
}

// parsePids reads "12,13" into pids.
func parsePids(s string) ([]int, error) {
	var pids []int
	for f := range strings.SplitSeq(s, ",") {
		if f == "" {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(f, &pid); err != nil {
			return nil, fmt.Errorf("parse pid %q: %w", f, err)
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		return nil, errors.New("no pids")
	}
	return pids, nil
}
