package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// runStream downloads a URL, sampling the pids' RSS while it streams.
func runStream(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	url := fs.String("url", "", "`URL` of a large response")
	pidList := fs.String("pids", "", "comma-separated `pids` of the front door's processes")
	every := fs.Duration("every", 20*time.Millisecond, "RSS sampling interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pids, err := parsePids(*pidList)
	if err != nil {
		return err
	}
	before, err := rssKiB(pids)
	if err != nil {
		return err
	}
	cpu0, err := cpuTime(pids)
	if err != nil {
		return err
	}

	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var peak int64
	wg.Go(func() { peak = sampleRSS(sctx, pids, *every) })

	start := time.Now()
	n, err := download(ctx, *url)
	took := time.Since(start)
	stop()
	wg.Wait()
	if err != nil {
		return err
	}
	cpu1, err := cpuTime(pids)
	if err != nil {
		return err
	}
	result(out, "stream_bytes", "%d", n)
	result(out, "stream_mib_s", "%.0f", float64(n)/(1<<20)/took.Seconds())
	result(out, "stream_rss_before_kib", "%d", before)
	result(out, "stream_rss_peak_kib", "%d", max(peak, before))
	result(out, "stream_cpu_ms_per_gib", "%.0f", float64((cpu1-cpu0).Milliseconds())/(float64(n)/(1<<30)))
	return nil
}

// sampleRSS returns the highest RSS of pids seen until ctx ends.
func sampleRSS(ctx context.Context, pids []int, every time.Duration) int64 {
	t := time.NewTicker(every)
	defer t.Stop()
	var peak int64
	for {
		if r, err := rssKiB(pids); err == nil {
			peak = max(peak, r)
		}
		select {
		case <-ctx.Done():
			return peak
		case <-t.C:
		}
	}
}

func download(ctx context.Context, url string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("download: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("download: status %s", res.Status)
	}
	n, err := io.Copy(io.Discard, res.Body)
	if err != nil {
		return n, fmt.Errorf("download after %d bytes: %w", n, err)
	}
	return n, nil
}
