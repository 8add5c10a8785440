// Command grpcapp is the gRPC app of the load tests in test/e2e: grpc-go's
// interop TestService on 127.0.0.1:--port, cleartext HTTP/2, with the
// header "app-pid" (its process id) on every answer, so that a client can
// tell which process served a call.
//
// With --graceful it stops as ASP.NET Core's Kestrel does on SIGTERM: it
// refuses new streams (GOAWAY) and finishes the ones it holds, then exits.
// Without it, SIGTERM ends it at once, as it ends grpc-go's interop server.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

func main() {
	port := flag.Int("port", 0, "the port to listen on (127.0.0.1)")
	graceful := flag.Bool("graceful", false, "on SIGTERM, finish the calls in flight before exiting")
	flag.Parse()
	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	pid := metadata.Pairs("app-pid", strconv.Itoa(os.Getpid()))
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := grpc.SetHeader(ctx, pid); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := ss.SetHeader(pid); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	)
	testgrpc.RegisterTestServiceServer(srv, interop.NewTestServer())
	if *graceful {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		go func() { <-sig; srv.GracefulStop() }() // Serve returns once it is done
	}
	if err := srv.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
