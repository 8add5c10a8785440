package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// loadResult is what a closed-loop load run measured over its measured
// window (after the warm-up).
type loadResult struct {
	done, failed int
	elapsed      time.Duration
	lat          []time.Duration // of the successful operations, sorted
	cpu          time.Duration   // of the -pids over the window; 0 without pids
	firstErr     error
}

// runLoad calls op from workers goroutines in a closed loop: first for
// warm (not counted), then for dur, counting operations that finish inside
// the measured window and the CPU time of pids over it. Every op gets ctx
// (which ends with the run, so none outlives it) and its worker's number.
func runLoad(ctx context.Context, workers int, warm, dur time.Duration, pids []int, op func(ctx context.Context, worker int) error) (loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, warm+dur+30*time.Second)
	defer cancel()
	var (
		mu      sync.Mutex
		res     loadResult
		measure bool
		stop    bool
	)
	var wg sync.WaitGroup
	for worker := range workers {
		wg.Go(func() {
			var lat []time.Duration
			done, failed := 0, 0
			var firstErr error
			for {
				mu.Lock()
				on, end := measure, stop
				mu.Unlock()
				if end || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				err := op(ctx, worker)
				d := time.Since(t0)
				mu.Lock()
				counted := on && measure // started and ended inside the window
				mu.Unlock()
				if !counted {
					continue
				}
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				done++
				lat = append(lat, d)
			}
			mu.Lock()
			res.done += done
			res.failed += failed
			res.lat = append(res.lat, lat...)
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	sleepCtx(ctx, warm)
	var cpu0 time.Duration
	var err error
	if len(pids) > 0 {
		if cpu0, err = cpuTime(pids); err != nil {
			cancel()
			wg.Wait()
			return res, err
		}
	}
	mu.Lock()
	measure = true
	mu.Unlock()
	start := time.Now()
	sleepCtx(ctx, dur)
	mu.Lock()
	measure, stop = false, true
	mu.Unlock()
	res.elapsed = time.Since(start)
	if len(pids) > 0 {
		cpu1, err := cpuTime(pids)
		if err != nil {
			cancel()
			wg.Wait()
			return res, err
		}
		res.cpu = cpu1 - cpu0
	}
	wg.Wait()
	slices.Sort(res.lat)
	return res, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// pct returns the p-th percentile (0 < p ≤ 100) of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// print writes the result lines, each key prefixed with prefix.
func (r loadResult) print(w io.Writer, prefix string, havePids bool) {
	sec := r.elapsed.Seconds()
	result(w, prefix+"per_s", "%.1f", float64(r.done)/sec)
	result(w, prefix+"done", "%d", r.done)
	result(w, prefix+"failed", "%d", r.failed)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	result(w, prefix+"p50_ms", "%.3f", ms(pct(r.lat, 50)))
	result(w, prefix+"p99_ms", "%.3f", ms(pct(r.lat, 99)))
	if havePids && r.done > 0 {
		result(w, prefix+"cpu_us", "%.1f", float64(r.cpu)/float64(time.Microsecond)/float64(r.done))
	}
	if r.firstErr != nil {
		fmt.Fprintf(os.Stderr, "benchtool: %sfirst error: %v\n", prefix, r.firstErr)
	}
}

// loadCA reads a PEM file into a client tls.Config that trusts it for
// ServerName localhost (the bench certificate's name).
func loadCA(file string) (*tls.Config, error) {
	if file == "" {
		return nil, errors.New("-ca is required")
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read -ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("-ca holds no certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}, nil
}
