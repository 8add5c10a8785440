package frontend_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/frontend"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// chainedProxyApp is proxyApp with a pipeline chain, as app.App has when
// metrics observe it.
type chainedProxyApp struct {
	proxyApp
	chain *pipeline.Chain
}

func (a *chainedProxyApp) Current() pipeline.App  { return a }
func (a *chainedProxyApp) Chain() *pipeline.Chain { return a.chain }

// BenchmarkFrontDoorMetrics is BenchmarkFrontDoor's lean path without and
// with the Prometheus request observer on the app, as gatehouse serve runs
// it: compare cpu-ns/op of the two (one run, same machine).
func BenchmarkFrontDoorMetrics(b *testing.B) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello World")
	}))
	defer back.Close()
	for _, withMetrics := range []bool{false, true} {
		name := map[bool]string{false: "none", true: "metrics"}[withMetrics]
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, "app")
			cfg := e.config(b, `
sites:
  - name: s
    bindings: [{name: http, scheme: http, address: 127.0.0.1, port: 0}]
    applications: [{path: /, dir: app}]
`)
			var chain *pipeline.Chain
			if withMetrics {
				m := metrics.New(prometheus.NewRegistry(), nil)
				chain = &pipeline.Chain{Observers: []pipeline.Observer{m.App("s", "/")}}
			}
			open := func(context.Context, frontend.AppSpec) (frontend.App, error) {
				p := proxyApp{&proxy.Handler{Backend: fixedBackend(back.Listener.Addr().String()), RequestTimeout: 2 * time.Minute}}
				if chain == nil {
					return p, nil
				}
				return &chainedProxyApp{p, chain}, nil
			}
			s, err := frontend.New(cfg, open, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			benchGets(b, s, false)
		})
	}
}
