package frontend

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// failingH3 is quic-go's writer as h3Writer sees it when sending the
// header fails (its stream's write deadline passed): HTTPStream fails, and
// the write deadline set last is kept.
type failingH3 struct {
	*httptest.ResponseRecorder
	deadline time.Time
}

func (f *failingH3) HTTPStream() (*http3.Stream, error) {
	return nil, errors.New("deadline exceeded")
}

func (f *failingH3) SetWriteDeadline(t time.Time) error { f.deadline = t; return nil }

// TestH3WriterFailedHeaderLeavesNoWholeAnswer: when the header could not
// be sent, Finish leaves quic-go's writer a write deadline in the past,
// so that the answer quic-go would finish after the handler (status, no
// body, FIN: a whole-looking answer) fails and the stream is reset.
func TestH3WriterFailedHeaderLeavesNoWholeAnswer(t *testing.T) {
	qw := &failingH3{ResponseRecorder: httptest.NewRecorder()}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := newH3Writer(qw, r)
	_, _ = w.Write([]byte("the body"))
	if err := w.Finish(); err == nil {
		t.Fatal("Finish succeeded with a header that could not be sent")
	}
	if qw.deadline.IsZero() || qw.deadline.After(time.Now()) {
		t.Fatalf("quic-go's writer was left a write deadline of %v, want one in the past", qw.deadline)
	}
}
