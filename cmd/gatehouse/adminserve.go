package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// adminSockets are the sockets of the admin endpoints, by name ("admin",
// "admin-addr", "metrics"), for an upgrade to hand over.
type adminSockets struct {
	names []string
	lns   []net.Listener
}

func (a *adminSockets) add(name string, ln net.Listener) {
	a.names, a.lns = append(a.names, name), append(a.lns, ln)
}

// files duplicates the sockets for a new Gatehouse.
func (a *adminSockets) files() ([]*os.File, []string) {
	var files []*os.File
	var names []string
	for i, ln := range a.lns {
		fl, ok := ln.(interface{ File() (*os.File, error) })
		if !ok {
			continue
		}
		if f, err := fl.File(); err == nil {
			files, names = append(files, f), append(names, a.names[i])
		}
	}
	return files, names
}

// startAdmin binds the admin socket (and --admin-addr, --metrics), or takes
// the ones an upgrading Gatehouse handed over (inherited, by name), and
// serves the admin API on them in wg until ctx ends. A socket or address
// given by flag that cannot be bound fails the start; a default socket that
// cannot be bound is only a warning. The admin socket's file is removed at
// the end unless keep says a new Gatehouse uses it.
func startAdmin(ctx context.Context, wg *sync.WaitGroup, f *serveFlags, ctl admin.Controller, metrics http.Handler,
	log *slog.Logger, inherited map[string]net.Listener, keep func() bool) (*adminSockets, error) {
	socks := &adminSockets{}
	srv := &admin.Server{Controller: ctl, Metrics: metrics, Log: log}
	path, explicit := f.socketPath(), f.adminSocket != ""
	if path != "" && path != "off" {
		var ln net.Listener
		var err error
		if in := inherited["admin"]; in != nil {
			ln = in
		} else {
			ln, err = admin.ListenUnix(path)
		}
		switch {
		case err != nil && explicit:
			return nil, err
		case err != nil:
			log.Warn("no admin socket; gatehouse status and the control commands will not reach this gatehouse", "err", err)
		default:
			log.Info("admin socket", "path", path)
			socks.add("admin", ln)
			wg.Go(func() {
				defer func() {
					ln.Close()
					if !keep() {
						os.Remove(path)
					}
				}()
				serveAdmin(ctx, srv, ln, log)
			})
		}
	}
	listen := func(name, addr string, bind func(string) (net.Listener, error)) (net.Listener, error) {
		if in := inherited[name]; in != nil {
			return in, nil
		}
		return bind(addr)
	}
	if f.adminAddr != "" {
		tokenFile := f.adminToken
		if tokenFile == "" {
			tokenFile = admin.TokenPath(path)
		}
		if tokenFile == "" {
			return nil, usageErr("--admin-addr: no admin socket to put the token file beside; pass --admin-token FILE")
		}
		token, err := admin.EnsureToken(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--admin-addr: %w", err)
		}
		ln, err := listen("admin-addr", f.adminAddr, admin.ListenTCP)
		if err != nil {
			return nil, usageErr("--admin-addr: %v", err)
		}
		log.Info("admin endpoint", "addr", ln.Addr().String(), "token_file", tokenFile)
		socks.add("admin-addr", ln)
		tsrv := &admin.Server{Controller: ctl, Metrics: metrics, Log: log, Token: token}
		wg.Go(func() { serveAdmin(ctx, tsrv, ln, log) })
	}
	if f.metricsAddr != "" {
		ln, err := listen("metrics", f.metricsAddr, func(a string) (net.Listener, error) { return net.Listen("tcp", a) })
		if err != nil {
			return nil, fmt.Errorf("--metrics: %w", err)
		}
		log.Info("metrics endpoint", "addr", ln.Addr().String())
		socks.add("metrics", ln)
		msrv := &admin.Server{Controller: ctl, Metrics: metrics, Log: log, MetricsOnly: true}
		wg.Go(func() { serveAdmin(ctx, msrv, ln, log) })
	}
	return socks, nil
}

// socketPath is the admin socket serve binds: --admin, else the default
// (see admin.DefaultSocket); "off" or "" for none.
func (f *serveFlags) socketPath() string {
	if f.adminSocket != "" {
		return f.adminSocket
	}
	return admin.DefaultSocket(f.pidFile)
}

func serveAdmin(ctx context.Context, srv *admin.Server, ln net.Listener, log *slog.Logger) {
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("admin endpoint stopped", "addr", ln.Addr().String(), "err", err)
	}
}
