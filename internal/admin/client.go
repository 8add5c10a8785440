package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// Client talks to a running Gatehouse's admin endpoint.
type Client struct {
	// Socket is the admin socket's path; Addr a loopback host:port used
	// when Socket is "".
	Socket string
	Addr   string
	// Token is sent as "Authorization: Bearer <Token>" when set: a TCP
	// address needs it (ReadToken reads it from the token file).
	Token string
}

// CallError is a control call that Gatehouse answered with a failure.
type CallError struct {
	// Kind is KindNotFound, KindConfig or KindFailed.
	Kind string
	Msg  string
}

func (e *CallError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrNotFound) and errors.Is(err,
// ErrInvalidConfig) work across the socket.
func (e *CallError) Is(target error) bool {
	return (target == ErrNotFound && e.Kind == KindNotFound) ||
		(target == ErrInvalidConfig && e.Kind == KindConfig)
}

func (c *Client) http() (*http.Client, string) {
	if c.Socket == "" {
		return &http.Client{}, "http://" + c.Addr
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.Socket)
		},
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr}, "http://gatehouse"
}

// where names the endpoint in errors.
func (c *Client) where() string {
	if c.Socket != "" {
		return "admin socket " + c.Socket
	}
	return "admin address " + c.Addr
}

// call sends method path to Gatehouse with the token, and returns the
// response of a call that succeeded (200); the caller closes its body.
func (c *Client) call(ctx context.Context, method, path string) (*http.Response, error) {
	hc, base := c.http()
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", c.where(), err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.reachErr(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, c.replyErr(resp)
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	resp, err := c.call(ctx, method, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the answer from %s: %w", c.where(), err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode the answer from %s: %w", c.where(), err)
	}
	return nil
}

// reachErr describes a call that reached no Gatehouse: a socket nobody
// answers on (or none) is ErrNotRunning.
func (c *Client) reachErr(err error) error {
	if c.Socket != "" && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fs.ErrNotExist)) {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: no admin socket at %s", ErrNotRunning, c.Socket)
		}
		return fmt.Errorf("%w (its admin socket %s is left from a gatehouse that was killed)", ErrNotRunning, c.Socket)
	}
	return fmt.Errorf("reach gatehouse at %s: %w", c.where(), err)
}

// replyErr reads a failure reply: a *CallError when it is Gatehouse's JSON.
func (c *Client) replyErr(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var r replyBody
	if json.Unmarshal(body, &r) == nil && r.Error != "" {
		return &CallError{Kind: r.Kind, Msg: r.Error}
	}
	return fmt.Errorf("%s answered %s: %s", c.where(), resp.Status, strings.TrimSpace(string(body)))
}

// Status fetches the status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Control runs a control call ("recycle", "stop", "start", "reload",
// "upgrade", "reopen-logs") on app ("" for none or every app) and waits
// for its outcome.
func (c *Client) Control(ctx context.Context, op, app string) error {
	switch op {
	case "recycle", "stop", "start", "reload", "upgrade", "reopen-logs":
	default:
		return errors.New("unknown control call " + op)
	}
	path := "/v1/" + op
	if app != "" {
		path += "?app=" + url.QueryEscape(app)
	}
	return c.do(ctx, http.MethodPost, path, nil)
}

// Save has Gatehouse keep the operator's state in its state file (forget:
// remove the file).
func (c *Client) Save(ctx context.Context, forget bool) error {
	path := "/v1/save"
	if forget {
		path += "?forget=1"
	}
	return c.do(ctx, http.MethodPost, path, nil)
}

// Logs copies app's last lines log lines to w ("" for every app), and with
// follow the new ones until ctx ends (then it returns nil).
func (c *Client) Logs(ctx context.Context, app string, lines int, follow bool, w io.Writer) error {
	q := url.Values{"lines": {strconv.Itoa(lines)}}
	if app != "" {
		q.Set("app", app)
	}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.call(ctx, http.MethodGet, "/v1/logs?"+q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read the log from %s: %w", c.where(), err)
	}
	return nil
}

// Scale sets app's number of processes and waits until they are ready.
func (c *Client) Scale(ctx context.Context, app string, n int) error {
	q := url.Values{"app": {app}, "n": {strconv.Itoa(n)}}
	return c.do(ctx, http.MethodPost, "/v1/scale?"+q.Encode(), nil)
}
