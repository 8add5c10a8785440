package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Defaults used by [Serve] for zero [ServeOptions] fields.
const (
	// DefaultAddr is the fallback listen address, used outside the module.
	DefaultAddr = "127.0.0.1:8080"

	// DefaultShutdownTimeout bounds the graceful drain. It stays under
	// ANCM's default shutdownTimeLimit of 10 s, after which the module
	// kills the app whatever it is doing.
	DefaultShutdownTimeout = 8 * time.Second

	// DefaultReadHeaderTimeout bounds reading request headers. The module
	// sends headers at once, so this only guards against stuck peers.
	DefaultReadHeaderTimeout = 10 * time.Second

	// DefaultIdleTimeout is how long a keep-alive connection may stay idle.
	// It is longer than the proxy's own idle timeout (90 s in Go's
	// http.Transport), so the proxy, not the app, closes idle connections
	// and never reuses one the app is closing.
	DefaultIdleTimeout = 120 * time.Second
)

// ServeOptions configures [Serve]. The zero value is ready to use.
type ServeOptions struct {
	// Listener, if non-nil, is served instead of the one [Listen] would
	// open. Serve closes it in every case.
	Listener net.Listener

	// Addr is the fallback address given to [Listen]. Empty means
	// DefaultAddr.
	Addr string

	// Config is the module contract. Nil means [FromEnv], used only when it
	// is [Config.Enabled], as [Handler] does.
	Config *Config

	// Logger receives the Middleware's messages, http.Server errors and one
	// line each for start and stop. Nil means these are discarded.
	Logger *slog.Logger

	// OnShutdown is passed on to [Middleware.OnShutdown].
	OnShutdown func()

	// ShutdownTimeout is how long the graceful stop may wait for active
	// requests. Zero means DefaultShutdownTimeout; negative means do not
	// wait: close every connection at once. Hijacked connections (such as
	// WebSockets) are not waited for; the handler must end them.
	ShutdownTimeout time.Duration

	// ReadHeaderTimeout is http.Server.ReadHeaderTimeout. Zero means
	// DefaultReadHeaderTimeout; negative means no limit.
	ReadHeaderTimeout time.Duration

	// IdleTimeout is http.Server.IdleTimeout. Zero means
	// DefaultIdleTimeout; negative means no limit.
	IdleTimeout time.Duration
}

// Serve serves h wrapped in a [Middleware] on the listener from
// opts.Listener or [Listen], until ctx ends or the module's shutdown
// request arrives. It then stops accepting connections and waits up to
// opts.ShutdownTimeout for active requests (contexts of active requests are
// not cancelled by ctx ending), closes what is left, and returns.
//
// Serve returns nil after a clean stop, an error wrapping
// context.DeadlineExceeded when the drain ran out of time, and otherwise the
// error that stopped it (such as a listen error). It never exits the
// process.
func Serve(ctx context.Context, h http.Handler, opts ServeOptions) error {
	log := opts.Logger
	if log == nil {
		log = discardLogger
	}
	ln := opts.Listener
	if ln == nil {
		var err error
		if ln, err = Listen(cmp.Or(opts.Addr, DefaultAddr)); err != nil {
			return err
		}
	}
	var cfg Config
	if opts.Config != nil {
		cfg = *opts.Config
	} else if env := FromEnv(); env.Enabled() {
		cfg = env
	}
	mw := &Middleware{Next: h, Config: cfg, Logger: opts.Logger, OnShutdown: opts.OnShutdown}
	srv := &http.Server{
		Handler:           mw,
		ReadHeaderTimeout: duration(opts.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		IdleTimeout:       duration(opts.IdleTimeout, DefaultIdleTimeout),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	errc := make(chan error, 1)
	go serveLoop(srv, ln, errc)
	log.Info("serving", slog.String("addr", ln.Addr().String()), slog.Bool("module", cfg.Enabled()))

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		log.Info("stopping", slog.String("reason", "context done"))
	case <-mw.ShutdownRequested():
		log.Info("stopping", slog.String("reason", "shutdown request from the module"))
	}
	err := stop(ctx, srv, duration(opts.ShutdownTimeout, DefaultShutdownTimeout))
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("serve: %w", serr)
	}
	return err
}

// serveLoop runs srv.Serve(ln) and reports how it ended on errc.
func serveLoop(srv *http.Server, ln net.Listener, errc chan<- error) {
	errc <- srv.Serve(ln)
}

// stop shuts srv down, waiting at most budget (0 means no wait) for active
// requests before closing them.
func stop(ctx context.Context, srv *http.Server, budget time.Duration) error {
	if budget <= 0 {
		return srv.Close()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("drain connections: %w", err)
	}
	return nil
}

// duration maps the documented zero (use def) and negative (no limit, 0)
// values of a ServeOptions duration.
func duration(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}
