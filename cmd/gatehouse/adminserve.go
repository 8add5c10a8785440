package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// startAdmin binds the admin socket (and --admin-addr) and serves the
// admin API on them in wg until ctx ends. A socket or address given by flag
// that cannot be bound fails the start; a default socket that cannot be
// bound is only a warning.
func startAdmin(ctx context.Context, wg *sync.WaitGroup, f *serveFlags, ctl admin.Controller, metrics http.Handler, log *slog.Logger) error {
	srv := &admin.Server{Controller: ctl, Metrics: metrics, Log: log}
	path, explicit := f.adminSocket, f.adminSocket != ""
	if !explicit {
		path = admin.DefaultSocket(f.pidFile)
	}
	if path != "" && path != "off" {
		ln, err := admin.ListenUnix(path)
		switch {
		case err != nil && explicit:
			return err
		case err != nil:
			log.Warn("no admin socket; gatehouse status and the control commands will not reach this gatehouse", "err", err)
		default:
			log.Info("admin socket", "path", path)
			wg.Go(func() {
				defer admin.CloseUnix(ln, path)
				serveAdmin(ctx, srv, ln, log)
			})
		}
	}
	if f.adminAddr != "" {
		ln, err := admin.ListenTCP(f.adminAddr)
		if err != nil {
			return usageErr("--admin-addr: %v", err)
		}
		log.Info("admin endpoint", "addr", ln.Addr().String())
		wg.Go(func() { serveAdmin(ctx, srv, ln, log) })
	}
	if f.metricsAddr != "" {
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		log.Info("metrics endpoint", "addr", ln.Addr().String())
		msrv := &admin.Server{Controller: ctl, Metrics: metrics, Log: log, MetricsOnly: true}
		wg.Go(func() { serveAdmin(ctx, msrv, ln, log) })
	}
	return nil
}

func serveAdmin(ctx context.Context, srv *admin.Server, ln net.Listener, log *slog.Logger) {
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("admin endpoint stopped", "addr", ln.Addr().String(), "err", err)
	}
}
