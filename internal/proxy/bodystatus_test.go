package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"
	"testing"
)

func TestBodyErrorStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&clientBodyError{errors.New("invalid byte in chunk length")}, 400},
		{&clientBodyError{&http.MaxBytesError{Limit: 10}}, 413},
		{&clientBodyError{fmt.Errorf("read: %w", os.ErrDeadlineExceeded)}, 408},
		{&clientBodyError{io.ErrUnexpectedEOF}, 499},
		{&clientBodyError{syscall.ECONNRESET}, 499},
	} {
		if got, _ := StatusFor(&BackendError{PID: 1, Err: tc.err}); got != tc.want {
			t.Errorf("StatusFor(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
