package supervisor

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopSequence stops pr gracefully: the ANCM shutdown event first when
// Spec.ShutdownEvent is set (apps with IIS integration answer 202 and
// stop), then SIGTERM to the process group once the event was answered or
// after at most a second (apps without IIS integration only understand
// SIGTERM), then SIGKILL to the group when
// ShutdownTimeout has passed since the start. It returns once pr has
// exited; the owner reaps it.
func (p *Pool) stopSequence(pr *process) {
	timeout := pr.spec.ShutdownTimeout
	p.mu.Lock()
	wasReady := !pr.readyAt.IsZero()
	why := pr.ask.cause
	p.mu.Unlock()
	p.log.Info("stopping process", "pid", pr.pid, "why", string(why))
	if timeout <= 0 {
		p.log.Warn("killing process", "pid", pr.pid, "why", "shutdownTimeLimit is 0")
		_ = pr.signal(syscall.SIGKILL)
		<-pr.exited
		return
	}
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	var wg sync.WaitGroup
	evDone := make(chan struct{})
	if wasReady && pr.spec.ShutdownEvent {
		wg.Go(func() {
			defer close(evDone)
			status, err := p.sendShutdown(ctx, pr)
			if err != nil {
				p.log.Info("shutdown event not delivered", "pid", pr.pid, "err", err)
				return
			}
			p.log.Info("sent shutdown event", "pid", pr.pid, "status", status)
		})
	} else {
		close(evDone)
	}
	grace := time.NewTimer(min(termGrace, timeout/2))
	select {
	case <-evDone:
	case <-grace.C:
	case <-pr.exited:
	case <-p.hurry:
	}
	grace.Stop()
	_ = pr.signal(syscall.SIGTERM)
	select {
	case <-pr.exited:
	case <-deadline.C:
		// Logged before the kill, so the record exists once Stop returns.
		p.log.Warn("process did not stop within shutdownTimeLimit; killing it",
			"pid", pr.pid, "after", time.Since(start).Round(time.Millisecond))
		_ = pr.signal(syscall.SIGKILL)
		<-pr.exited
	case <-p.hurry:
		if pr.signal(syscall.SIGKILL) == nil {
			p.log.Warn("killed process", "pid", pr.pid, "why", "Close deadline passed")
		}
		<-pr.exited
	}
	cancel()
	wg.Wait()
}

// sendShutdown POSTs the ANCM shutdown event and returns the status.
func (p *Pool) sendShutdown(ctx context.Context, pr *process) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, shutdownURL(pr.addr, pr.spec.ApplPath), http.NoBody)
	if err != nil {
		return 0, err
	}
	req.Header.Set("MS-ASPNETCORE-EVENT", "shutdown")
	req.Header.Set("MS-ASPNETCORE-TOKEN", pr.token)
	resp, err := p.eventClient(pr).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// shutdownURL is http://addr + ApplPath (when longer than "/") + "/iisintegration".
func shutdownURL(addr, applPath string) string {
	return "http://" + addr + strings.TrimRight(applPath, "/") + "/iisintegration"
}

// newEventClient returns the client for shutdown events and readiness
// probes: one connection per request, redirects not followed, and, with
// h2c, HTTP/2 with prior knowledge instead of HTTP/1.1.
func newEventClient(h2c bool) *http.Client {
	t := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// eventClient returns the client that speaks pr's protocol.
func (p *Pool) eventClient(pr *process) *http.Client {
	if pr.spec.H2C {
		return p.h2c
	}
	return p.client
}
