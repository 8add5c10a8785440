package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// runGRPC is "benchtool grpc": a gRPC load on a cleartext HTTP/2 front door
// in front of grpc-go's interop server, made with grpc-go's client. Mode
// unary makes UnaryCall after UnaryCall (a 64-byte payload each way);
// mode stream holds one bidirectional stream (FullDuplexCall) per worker
// and makes round trips of 64-byte messages on it, each counted as one
// RPC. After a one-second warm-up it counts the calls completed in -dur and
// the CPU time the -pids used meanwhile, and prints "rpcs", "rps",
// "cpu_us_per_rpc" and "errors".
func runGRPC(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	addr := fs.String("addr", "", "front door HOST:PORT (h2c)")
	mode := fs.String("mode", "unary", "unary or stream")
	conns := fs.Int("conns", 4, "client connections")
	workers := fs.Int("workers", 32, "concurrent calls (or streams), spread over the connections")
	dur := fs.Duration("dur", 5*time.Second, "measuring time, after a 1 s warm-up")
	pidList := fs.String("pids", "", "the front door's processes, for CPU time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || (*mode != "unary" && *mode != "stream") {
		return errors.New("grpc: -addr and -mode unary|stream are needed")
	}
	pids, err := parsePids(*pidList)
	if err != nil {
		return err
	}
	cs := make([]*grpc.ClientConn, *conns)
	for i := range cs {
		if cs[i], err = grpc.NewClient("passthrough:///"+*addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return fmt.Errorf("grpc client: %w", err)
		}
		defer cs[i].Close()
	}

	ctx, cancel := context.WithTimeout(ctx, *dur+30*time.Second)
	defer cancel()
	var (
		counting atomic.Bool
		calls    atomic.Int64
		errs     atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	payload := &testpb.Payload{Body: make([]byte, 64)}
	for w := range *workers {
		c := testpb.NewTestServiceClient(cs[w%len(cs)])
		wg.Go(func() {
			done := func() bool {
				select {
				case <-stop:
					return true
				default:
					return false
				}
			}
			count := func(err error) {
				if !counting.Load() {
					return
				}
				if err != nil {
					errs.Add(1)
					return
				}
				calls.Add(1)
			}
			if *mode == "unary" {
				req := &testpb.SimpleRequest{ResponseSize: 64, Payload: payload}
				for !done() {
					_, err := c.UnaryCall(ctx, req)
					count(err)
				}
				return
			}
			req := &testpb.StreamingOutputCallRequest{
				ResponseParameters: []*testpb.ResponseParameters{{Size: 64}}, Payload: payload,
			}
			for !done() {
				sctx, scancel := context.WithCancel(ctx)
				s, err := c.FullDuplexCall(sctx)
				for err == nil && !done() {
					if err = s.Send(req); err == nil {
						_, err = s.Recv()
					}
					count(err)
				}
				if err == nil {
					_ = s.CloseSend()
				}
				scancel()
				if err != nil && ctx.Err() != nil {
					return
				}
			}
		})
	}
	warm := time.NewTimer(time.Second)
	select {
	case <-warm.C:
	case <-ctx.Done():
	}
	before, err := cpuTime(pids)
	if err != nil {
		close(stop)
		wg.Wait()
		return err
	}
	counting.Store(true)
	start := time.Now()
	measure := time.NewTimer(*dur)
	select {
	case <-measure.C:
	case <-ctx.Done():
	}
	counting.Store(false)
	n, elapsed := calls.Load(), time.Since(start)
	after, err := cpuTime(pids)
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("grpc %s: no call completed (%d errors)", *mode, errs.Load())
	}
	result(out, "rpcs", "%d", n)
	result(out, "rps", "%.0f", float64(n)/elapsed.Seconds())
	result(out, "cpu_us_per_rpc", "%.2f", float64((after-before).Microseconds())/float64(n))
	result(out, "errors", "%d", errs.Load())
	return nil
}
