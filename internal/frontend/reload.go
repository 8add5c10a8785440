package frontend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// Reload validates cfg and makes it the served configuration:
//
//   - apps whose (site, path, dir) did not change keep their App instance;
//     new ones are opened, removed ones are closed after the switch;
//   - listeners whose socket is unchanged keep it; new ones are bound,
//     dropped ones stop accepting and drain within ShutdownTimeout; when
//     timeouts or protocols change, the socket stays and a new http.Server
//     takes over while the old one drains its connections;
//   - all certificates are read again.
//
// If anything fails (validation, opening an app, a certificate, binding), the
// error is returned, everything opened for cfg is closed and the old
// configuration keeps serving untouched. Reload before Run only swaps the
// configuration. Safe for concurrent use with requests; Reload calls are
// serialized. ctx bounds opening and closing apps.
func (s *Server) Reload(ctx context.Context, cfg *siteconfig.Config) error {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	s.mu.Lock()
	if s.state == stateStopped {
		s.mu.Unlock()
		return fmt.Errorf("reload: %w", ErrClosed)
	}
	p, err := s.prepare(ctx, cfg)
	if err != nil {
		s.mu.Unlock()
		p.rollback(ctx)
		return fmt.Errorf("reload: %w", err)
	}
	var added map[string]*listener
	var retired []*listener
	if s.state == stateRunning {
		added, retired, err = s.rebind(cfg)
		if err != nil {
			s.mu.Unlock()
			p.rollback(ctx)
			return fmt.Errorf("reload: %w", err)
		}
	}
	oldApps, oldLogs := s.apps, s.logs
	s.commit(p)
	if s.state == stateRunning {
		s.switchListeners(added, retired)
		s.updateWatches()
		s.acme.apply(s.acmeSet, s.acmeListenersOf(cfg))
	}
	s.mu.Unlock()

	// After the switch no new request reaches a removed app or log.
	var errs []error
	closedApps := 0
	for k, a := range oldApps {
		if p.apps[k] == nil {
			closedApps++
			if err := a.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("close app %s%s: %w", k.site, k.path, err))
			}
		}
	}
	for k, l := range oldLogs {
		if p.logs[k] == nil {
			_ = l.close()
		}
	}
	// The one line of a reload that applied (a rejected one is logged by
	// the caller, which gets the error).
	opened, closed := make([]string, 0, len(added)), make([]string, 0, len(retired))
	for key := range added {
		opened = append(opened, key)
	}
	for _, l := range retired {
		closed = append(closed, l.key)
	}
	slices.Sort(opened)
	slices.Sort(closed)
	s.log.Info("config reloaded", "file", cfg.File, "apps_opened", len(p.newApps), "apps_closed", closedApps,
		"listeners_opened", opened, "listeners_closed", closed, "took", time.Since(start).Round(time.Millisecond))
	if len(errs) > 0 {
		return fmt.Errorf("reload applied; %w", errors.Join(errs...))
	}
	return nil
}

// rebind binds the listeners cfg has and the server does not. A listener
// whose address moves to another scheme is closed first so its port can be
// taken over. On error the new sockets are closed and nothing changed.
// Called with s.mu held.
func (s *Server) rebind(cfg *siteconfig.Config) (added map[string]*listener, retired []*listener, err error) {
	want := listenerBindings(cfg)
	added = map[string]*listener{}
	for key, b := range want {
		if old := s.listeners[key]; old != nil {
			if set := settingsFor(cfg, b.Scheme); set.http3 && old.udp == nil {
				// HTTP/3 switched on: the UDP socket is new.
				if err := old.bindUDPPending(); err != nil {
					s.closeAdded(added)
					return nil, nil, fmt.Errorf("listen udp %s: %w", key, err)
				}
			}
			continue
		}
		l, err := s.bind(b, settingsFor(cfg, b.Scheme))
		if err != nil && errors.Is(err, syscall.EADDRINUSE) {
			if old := s.takeOver(want, b); old != nil {
				l, err = s.bind(b, settingsFor(cfg, b.Scheme))
			}
		}
		if err != nil {
			s.closeAdded(added)
			return nil, nil, err
		}
		added[key] = l
	}
	for key, l := range s.listeners {
		if want[key] == nil {
			retired = append(retired, l)
		}
	}
	return added, retired, nil
}

// takeOver stops the accept socket of a listener that cfg drops and that holds
// b's address (a binding that changed scheme). Called with s.mu held.
func (s *Server) takeOver(want map[string]*siteconfig.Binding, b *siteconfig.Binding) *listener {
	for key, l := range s.listeners {
		if want[key] == nil && l.raw.Addr().String() == addrOf(b) {
			l.closed.Store(true)
			_ = l.raw.Close()
			return l
		}
	}
	return nil
}

func addrOf(b *siteconfig.Binding) string {
	if b.Address == "" {
		return net.JoinHostPort("::", fmt.Sprint(b.Port))
	}
	return b.ListenAddr()
}

func (s *Server) closeAdded(added map[string]*listener) {
	for _, l := range added {
		_ = l.raw.Close()
		if l.udp != nil {
			_ = l.udp.Close()
		}
	}
	for _, l := range s.listeners {
		if l.pendingUDP != nil {
			_ = l.pendingUDP.Close()
			l.pendingUDP = nil
		}
	}
}

// bindUDPPending opens the HTTP/3 socket of a running listener; switchListeners
// starts serving it.
func (l *listener) bindUDPPending() error {
	keep := l.udp
	if err := l.bindUDP(); err != nil {
		return err
	}
	l.pendingUDP, l.udp = l.udp, keep
	return nil
}

// switchListeners applies s.cfg to the running listeners. Called with s.mu held.
func (s *Server) switchListeners(added map[string]*listener, retired []*listener) {
	for _, l := range retired {
		delete(s.listeners, l.key)
		s.retire(l)
	}
	for key, l := range added {
		s.listeners[key] = l
	}
	for key, b := range listenerBindings(s.cfg) {
		l := s.listeners[key]
		if added[key] != nil {
			continue
		}
		set := settingsFor(s.cfg, b.Scheme)
		// HTTP/3 on or off.
		if !set.http3 && l.h3 != nil {
			h3, udp := l.h3, l.udp
			l.h3, l.udp = nil, nil
			l.set.http3 = false
			budget := set.shutdownDur
			s.wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), max(budget, 0))
				defer cancel()
				_ = h3.Shutdown(ctx)
				_ = udp.Close()
			})
		}
		if l.pendingUDP != nil {
			l.udp, l.pendingUDP = l.pendingUDP, nil
			l.set.http3 = true
			s.startH3(l, set)
		}
		// Server-level settings: new generation on the same socket.
		cmp := set
		cmp.http3 = l.set.http3
		if cmp != l.set {
			old := l.cur.Load()
			l.set = set
			g := l.newGeneration(set)
			l.cur.Store(g)
			s.wg.Go(func() { l.serve(g) })
			budget := set.shutdownDur
			s.wg.Go(func() { drain(old, budget) })
		}
	}
	s.publish()
	for _, l := range added {
		s.start(l)
	}
}

// retire stops a listener dropped by a reload: the socket closes now, its
// requests drain within ShutdownTimeout. Called with s.mu held.
func (s *Server) retire(l *listener) {
	l.closed.Store(true)
	_ = l.raw.Close()
	budget := s.cfg.ShutdownTimeout
	g, h3, udp := l.cur.Load(), l.h3, l.udp
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), max(budget, 0))
		var wg sync.WaitGroup
		wg.Go(func() { l.lean.drain(ctx) })
		drain(g, budget)
		wg.Wait()
		cancel()
		if h3 != nil {
			ctx, cancel := context.WithTimeout(context.Background(), max(budget, 0))
			_ = h3.Shutdown(ctx)
			cancel()
		}
		if udp != nil {
			_ = udp.Close()
		}
	})
}
