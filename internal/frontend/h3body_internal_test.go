package frontend

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// readStep is one read of a scriptedBody: the bytes and error it returns.
type readStep struct {
	b   string
	err error
}

// scriptedBody is an HTTP/3 request body whose reads follow a script, and
// the writer whose SetReadDeadline the body's reads see (quic-go's stream
// and writer, as h3BodyEnded uses them). A read while the deadline has
// passed returns the script's next step; reads past the script, or without
// a deadline, return rest.
type scriptedBody struct {
	http.ResponseWriter
	script   []readStep
	rest     io.Reader
	deadline time.Time
	// ahead counts the reads made while the deadline had passed.
	ahead int
}

func (b *scriptedBody) SetReadDeadline(t time.Time) error {
	b.deadline = t
	return nil
}

func (b *scriptedBody) Read(p []byte) (int, error) {
	if !b.deadline.IsZero() && b.deadline.Before(time.Now()) {
		b.ahead++
		if len(b.script) == 0 {
			return 0, os.ErrDeadlineExceeded
		}
		s := b.script[0]
		b.script = b.script[1:]
		return copy(p, s.b), s.err
	}
	return b.rest.Read(p)
}

// errClientReset stands for the client's reset of the request's stream.
var errClientReset = errors.New("stream reset by the client")

// TestH3BodyEnded: an HTTP/3 request whose head gave no length loses its
// body only when its stream has already ended; one whose body is still
// coming keeps it, with whatever was read of it first reaching the app
// first, and the stream's read deadline is left cleared.
func TestH3BodyEnded(t *testing.T) {
	deadline := os.ErrDeadlineExceeded // quic-go's is a net.Error that is it (errors.Is)
	cases := []struct {
		name   string
		script []readStep
		rest   string
		// wantLength is the request's length afterwards; wantBody what
		// the app reads of it (wantErr then) when the length is not 0.
		wantLength int64
		wantBody   string
		wantErr    error
	}{
		{name: "ended-with-headers", script: []readStep{{err: io.EOF}}, wantLength: 0},
		// quic-go's stream takes in a FIN that came in a STREAM frame of
		// its own only with a read, which still fails for the deadline.
		{name: "fin-in-a-frame-of-its-own", script: []readStep{{err: deadline}, {err: io.EOF}}, wantLength: 0},
		{name: "body-coming", script: []readStep{{err: deadline}, {err: deadline}}, rest: "the body",
			wantLength: -1, wantBody: "the body", wantErr: io.EOF},
		{name: "first-byte-read-ahead", script: []readStep{{b: "t"}}, rest: "he body",
			wantLength: -1, wantBody: "the body", wantErr: io.EOF},
		{name: "whole-body-read-ahead", script: []readStep{{b: "t", err: io.EOF}}, rest: "never read",
			wantLength: -1, wantBody: "t", wantErr: io.EOF},
		{name: "reset", script: []readStep{{err: errClientReset}}, rest: "never read",
			wantLength: -1, wantBody: "", wantErr: errClientReset},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := &scriptedBody{script: c.script, rest: strings.NewReader(c.rest)}
			var st reqState
			st.req.ContentLength = -1
			st.src, st.ctl = body, http.NewResponseController(body)
			st.h3BodyEnded(http.NewResponseController(body))
			if !body.deadline.IsZero() {
				t.Errorf("the read deadline is left at %v, want it cleared", body.deadline)
			}
			if body.ahead != len(c.script) {
				t.Errorf("%d reads ahead, want %d", body.ahead, len(c.script))
			}
			if st.req.ContentLength != c.wantLength {
				t.Fatalf("length %d, want %d", st.req.ContentLength, c.wantLength)
			}
			if c.wantLength == 0 {
				if st.src != nil || st.ctl != nil {
					t.Errorf("a request without a body kept its body (%v) or its deadline setter (%v)", st.src, st.ctl)
				}
				return
			}
			got, err := io.ReadAll(oneByteReader{st.src})
			if c.wantErr == io.EOF {
				if err != nil {
					t.Fatalf("the app read %q, then %v", got, err)
				}
			} else if !errors.Is(err, c.wantErr) {
				t.Fatalf("the app read %q, then %v, want %v", got, err, c.wantErr)
			}
			if string(got) != c.wantBody {
				t.Errorf("the app read %q, want %q", got, c.wantBody)
			}
		})
	}
}

// oneByteReader reads one byte at a time, so that a body read ahead is
// read in pieces.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}
