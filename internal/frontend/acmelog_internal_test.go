package frontend

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"testing"

	"go.uber.org/zap"
)

// TestZapToSlog: certmagic's zap lines reach the slog handler with their
// level, logger name and fields (an error as its text, a NaN as a string
// JSON can hold); lines below the handler's level are dropped.
func TestZapToSlog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := zapToSlog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	log.Debug("hidden")
	log.Named("obtain").With(zap.String("identifier", "a.test")).Error("could not get certificate",
		zap.Error(errors.New("boom")), zap.Float64("fill", math.NaN()), zap.Int("attempt", 2))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("want one JSON line: %v\n%s", err, buf.String())
	}
	for k, want := range map[string]any{"level": "ERROR", "msg": "could not get certificate", "logger": "obtain",
		"identifier": "a.test", "error": "boom", "fill": "NaN", "attempt": float64(2)} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %v (line %s)", k, rec[k], want, buf.String())
		}
	}
}
