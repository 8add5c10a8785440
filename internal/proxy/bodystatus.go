package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// bodyErrorStatus is the answer to a request whose body could not be read
// (err wraps the read error): 413 past maxAllowedContentLength, 408 when
// the body timeout expired, 499 when the client went away (the body ended
// early, the connection was reset), else 400 (malformed chunked framing).
func bodyErrorStatus(err error) int {
	switch {
	case errors.As(err, new(*http.MaxBytesError)):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return pipeline.StatusClientClosedRequest
	}
	return http.StatusBadRequest
}
