package integration_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse/gatehouse/integration"
)

// A typical main for an app behind Gatehouse or IIS: Serve listens where the
// module says, checks the pairing token and stops gracefully on SIGTERM or
// on the module's shutdown request.
func Example() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s (%s)\n", r.RemoteAddr, integration.Scheme(r))
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := integration.Serve(ctx, mux, integration.ServeOptions{Logger: log}); err != nil {
		log.Error("serve", "error", err)
		os.Exit(1)
	}
}

// The Middleware as the module sees it: the path base is stripped, the
// client's address and scheme come from X-Forwarded-*, and a request
// without the pairing token is rejected.
func ExampleMiddleware() {
	app := http.NewServeMux()
	app.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over %s under %q", r.RemoteAddr, integration.Scheme(r), integration.PathBase(r))
	})
	m := &integration.Middleware{
		Next:   app,
		Config: integration.Config{Port: "5000", Token: "secret", PathBase: "/myapp"},
	}
	srv := httptest.NewServer(m)
	defer srv.Close()

	for _, token := range []string{"secret", "guess"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/MyApp/hello", nil)
		req.Header.Set("MS-ASPNETCORE-TOKEN", token)
		req.Header.Set("X-Forwarded-For", "203.0.113.7:4711")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	// Output:
	// 200 hello 203.0.113.7:4711 over https under "/myapp"
	// 400
}

// What the module sends to stop the app, and how Serve reacts.
func ExampleServe() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := integration.Config{Port: "unused", Token: "secret", PathBase: "/myapp"}
	done := make(chan error, 1)
	go func() {
		done <- integration.Serve(context.Background(), http.NotFoundHandler(),
			integration.ServeOptions{Listener: ln, Config: &cfg})
	}()

	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/myapp/iisintegration", nil)
	req.Header.Set("MS-ASPNETCORE-TOKEN", "secret")
	req.Header.Set("MS-ASPNETCORE-EVENT", "shutdown")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Println("Serve returned", <-done)
	// Output:
	// 202 Accepted
	// Serve returned <nil>
}

// Handler reads the module's settings from the environment; the app uses
// ShutdownRequested to stop its own http.Server.
func ExampleHandler() {
	m := integration.Handler(http.NotFoundHandler())
	fmt.Println("behind the module:", m.Config.Enabled())

	ln, err := integration.Listen("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: m}
	go func() {
		<-m.ShutdownRequested()
		srv.Shutdown(context.Background())
	}()
	_ = srv.Serve(ln)
}
