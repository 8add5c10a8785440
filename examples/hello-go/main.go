// Command hello-go is a small web app that runs behind Gatehouse or IIS with
// the ASP.NET Core Module, using the integration package: it listens where
// the module says, accepts only requests that carry the pairing token, sees
// the real client address and scheme, and stops gracefully when the module
// asks it to or on SIGTERM.
//
// Build it next to its web.config:
//
//	go build -o examples/hello-go/hello-go ./examples/hello-go
//
// Run on its own, it listens on 127.0.0.1:8080.
package main

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/integration"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<meta charset="utf-8">
<title>hello-go</title>
<h1>{{.Greeting}}</h1>
<p>You are {{.Client}}, connected over {{.Scheme}}.</p>
<p>This app lives at <code>{{.Base}}/</code> and runs as process {{.PID}}, started {{.Started}}.</p>
`))

func main() {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	if err := run(log); err != nil {
		log.Error("hello-go stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	greeting := cmp.Or(os.Getenv("HELLO_GREETING"), "Hello from Go")
	started := time.Now().Format(time.RFC1123)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		err := page.Execute(w, map[string]any{
			"Greeting": greeting,
			"Client":   r.RemoteAddr,
			"Scheme":   integration.Scheme(r),
			"Base":     integration.PathBase(r),
			"PID":      os.Getpid(),
			"Started":  started,
		})
		if err != nil {
			log.Warn("render page", "error", err)
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})

	log.Info("hello-go starting", "pid", os.Getpid(), "behind_module", integration.FromEnv().Enabled())
	return integration.Serve(ctx, mux, integration.ServeOptions{Logger: log})
}
