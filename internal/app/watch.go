package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

const (
	offlineName = "app_offline.htm"
	// maxOfflineSize caps how much of app_offline.htm is kept in memory and
	// served. ANCM allows up to 4 GB; a maintenance page is a few KB.
	maxOfflineSize = 16 << 20
	// settleDelay coalesces the bursts of events an editor or a deploy tool
	// makes when it writes web.config or replaces the folder, so the app is
	// recycled once, with the final file.
	settleDelay = 250 * time.Millisecond
)

// watcher watches the app folder (app_offline.htm, web.config), its parent
// (the folder being replaced by a deploy tool) and the restart marker's
// folder, with inotify through fsnotify. It is owned by App.watchLoop.
type watcher struct {
	fs     *fsnotify.Watcher
	dir    string // app folder
	parent string
	file   string // web.config path
	marker string // restart marker, "" for none
	// sources are the files web.config's configSource attributes name
	// (config.App.Sources): their changes are web.config changes.
	sources []string
	// sum is the SHA-256 of web.config and its sources as last applied: a
	// touch, a mode-preserving chmod or a rewrite with the same bytes
	// changes nothing and recycles nothing. Used by the watch loop only.
	sum [sha256.Size]byte
	// stop asks the loop to stop the app again (a process started while
	// app_offline.htm appeared). Buffered: one pending request is enough.
	stop chan struct{}
}

func newWatcher(cfg *config.App, log *slog.Logger) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{fs: fw, dir: cfg.Dir, parent: filepath.Dir(cfg.Dir), file: cfg.File, stop: make(chan struct{}, 1)}
	if err := fw.Add(w.dir); err != nil {
		fw.Close()
		return nil, err
	}
	// The parent is watched so that a deploy that swaps the whole folder
	// (rename new → publish) is seen; not fatal if it can't be.
	if err := fw.Add(w.parent); err != nil {
		log.Warn("cannot watch the app folder's parent; a replaced folder will not be noticed", "dir", w.parent, "err", err)
	}
	w.setMarker(cfg.RestartMarker, log)
	w.setSources(cfg.Sources, log)
	if sum, err := w.digest(); err == nil {
		w.sum = sum
	}
	return w, nil
}

// setSources starts watching the folders of web.config's configSource
// files (the app folder is watched already).
func (w *watcher) setSources(sources []string, log *slog.Logger) {
	w.sources = sources
	for _, s := range sources {
		if d := filepath.Dir(s); d != w.dir {
			if err := w.fs.Add(d); err != nil {
				log.Warn("cannot watch a configSource file's folder; its changes will not be noticed", "file", s, "err", err)
			}
		}
	}
}

// isSource reports whether path is one of the configSource files.
func (w *watcher) isSource(path string) bool {
	for _, s := range w.sources {
		if s == path {
			return true
		}
	}
	return false
}

// digest is the SHA-256 of web.config followed by its configSource files.
// The error is web.config's; a missing source counts as empty.
func (w *watcher) digest() ([sha256.Size]byte, error) {
	h := sha256.New()
	b, err := os.ReadFile(w.file)
	h.Write(b)
	for _, s := range w.sources {
		sb, _ := os.ReadFile(s)
		h.Write([]byte{0})
		h.Write(sb)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, err
}

// setMarker starts watching the folder of the restart marker file.
func (w *watcher) setMarker(marker string, log *slog.Logger) {
	w.marker = marker
	if marker == "" {
		return
	}
	d := filepath.Dir(marker)
	if d == w.dir || d == w.parent {
		return
	}
	if err := w.fs.Add(d); err != nil {
		log.Warn("cannot watch the restart marker's folder", "marker", marker, "err", err)
	}
}

func (w *watcher) close() { w.fs.Close() }

// kickStop asks the watch loop to stop the app's processes. Safe on nil.
func (w *watcher) kickStop() {
	if w == nil {
		return
	}
	select {
	case w.stop <- struct{}{}:
	default:
	}
}

// watchLoop is the one goroutine that reacts to file changes. It ends when
// ctx is cancelled or the watcher is closed.
func (a *App) watchLoop(ctx context.Context) {
	w := a.watch
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var reloadPending, recyclePending bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			if a.offline.Load() != nil {
				a.stopForOffline(ctx)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflow loses events: check everything again.
			a.log.Warn("file watcher", "dir", w.dir, "err", err)
			a.checkOffline(ctx)
			reloadPending = true
			settle.Reset(settleDelay)
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			dir := filepath.Dir(ev.Name)
			switch {
			case ev.Name == w.dir && ev.Has(fsnotify.Create):
				// The folder was replaced: watch the new one, then look at
				// everything in it as if it were new.
				if err := w.fs.Add(w.dir); err != nil {
					a.log.Error("watch replaced app folder", "dir", w.dir, "err", err)
				}
				a.checkOffline(ctx)
				reloadPending = true
				settle.Reset(settleDelay)
			case dir == w.dir && strings.EqualFold(name, offlineName):
				a.checkOffline(ctx)
			case dir == w.dir && strings.EqualFold(name, filepath.Base(w.file)), w.isSource(ev.Name):
				reloadPending = true
				settle.Reset(settleDelay)
			case w.marker != "" && ev.Name == w.marker && !ev.Has(fsnotify.Remove):
				recyclePending = true
				settle.Reset(settleDelay)
			}
		case <-settle.C:
			switch {
			case reloadPending:
				a.reloadConfig()
			case recyclePending:
				a.log.Info("restart marker changed; recycling", "marker", w.marker)
				a.queueRecycle(recycleRequest{why: "restart marker"})
			}
			reloadPending, recyclePending = false, false
		}
	}
}

// checkOffline looks for app_offline.htm (any letter case, as ANCM) and
// moves the app in or out of the offline state.
func (a *App) checkOffline(ctx context.Context) {
	body, present, err := readOffline(a.watch.dir)
	if err != nil {
		// Present but unreadable (ANCM: a locked file gives an empty page).
		a.log.Warn("read app_offline.htm", "err", err)
	}
	if present {
		was := a.offline.Swap(&body)
		if was == nil {
			a.log.Info("app_offline.htm detected; stopping the app", "dir", a.watch.dir)
			a.stopForOffline(ctx)
		}
		return
	}
	if a.offline.Swap(nil) != nil {
		a.log.Info("app_offline.htm removed; the app starts on the next request", "dir", a.watch.dir)
	}
}

// stopForOffline stops the app's processes and returns when they are gone
// (at most shutdownTimeLimit) or ctx ends. Any recycle in progress ends with
// them.
func (a *App) stopForOffline(ctx context.Context) {
	start := time.Now()
	if err := a.pool.Stop(ctx); err != nil {
		if ctx.Err() == nil {
			a.log.Error("stop app for app_offline.htm", "err", err)
		}
		return
	}
	a.log.Debug("app stopped for app_offline.htm", "took", time.Since(start).Round(time.Millisecond))
}

// readOffline returns the content of dir/app_offline.htm, matching the name
// without regard to case. present is true when such a file exists, even if
// it could not be read (then body is empty and err says why).
func readOffline(dir string) (body []byte, present bool, err error) {
	p := filepath.Join(dir, offlineName)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		entries, derr := os.ReadDir(dir)
		if derr != nil {
			return nil, false, nil
		}
		found := false
		for _, e := range entries {
			if strings.EqualFold(e.Name(), offlineName) && !e.IsDir() {
				p, found = filepath.Join(dir, e.Name()), true
				break
			}
		}
		if !found {
			return nil, false, nil
		}
		f, err = os.Open(p)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return []byte{}, true, err
	}
	defer f.Close()
	body, err = io.ReadAll(io.LimitReader(f, maxOfflineSize))
	if err != nil {
		return []byte{}, true, fmt.Errorf("read %s: %w", p, err)
	}
	return body, true, nil
}

// reloadConfig re-reads web.config after a change. A file that no longer
// parses is logged with its line and the old settings keep running;
// otherwise the new settings take effect at once for new requests and the
// app is recycled onto them by recycleLoop.
func (a *App) reloadConfig() {
	sum, rerr := a.watch.digest()
	if rerr == nil && sum == a.watch.sum {
		a.log.Debug("web.config event without a change of content; not recycling", "file", a.watch.file)
		return
	}
	cfg, err := webconfig.Load(a.watch.file)
	if err == nil {
		cfg.SiteSchemes = a.opts.Auth.Schemes
		inheritProtocol(cfg, a.opts.Protocol)
		err = cfg.Validate()
	}
	var st *state
	if err == nil {
		st, err = a.newState(cfg)
	}
	if err != nil {
		a.log.Error("web.config changed but cannot be used; the old settings stay in force", "err", err)
		return
	}
	a.watch.setMarker(cfg.RestartMarker, a.log)
	if !slices.Equal(cfg.Sources, a.watch.sources) {
		a.watch.setSources(cfg.Sources, a.log)
		if s, err := a.watch.digest(); err == nil {
			sum = s
		}
	}
	old := a.cur.Swap(st)
	old.closeIdle()
	spec := a.spec(cfg)
	a.watch.sum = sum
	a.log.Info("web.config changed; recycling", "file", cfg.File)
	a.queueRecycle(recycleRequest{spec: &spec, why: "web.config change"})
}

// recycleRequest is a recycle for recycleLoop: onto spec, or, when spec is
// nil, onto the current settings.
type recycleRequest struct {
	spec *supervisor.Spec
	why  string
}

// queueRecycle hands r to recycleLoop without waiting. A request still
// queued is merged into r: new settings are never dropped for a plain
// recycle. Only the watch loop calls it, so the send never blocks.
func (a *App) queueRecycle(r recycleRequest) {
	select {
	case old := <-a.recycles:
		if r.spec == nil {
			r.spec, r.why = old.spec, old.why
		}
	default:
	}
	a.recycles <- r
}

// recycleLoop runs the recycles the watch loop asks for, one at a time. It
// is separate from the watch loop because a recycle waits for the new
// process to start (up to startupTimeLimit) and the old one to drain, and
// app_offline.htm must still be acted on meanwhile (stopping the app also
// ends the recycle). It ends when ctx ends.
func (a *App) recycleLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-a.recycles:
			var err error
			if r.spec != nil {
				// With nothing running (offline, idle, not started yet)
				// Recycle only keeps the new settings for the next start.
				err = a.pool.Recycle(ctx, r.spec)
			} else {
				err = a.Recycle(ctx)
			}
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, upstream.ErrShuttingDown):
				a.log.Info("recycle cut short: the app was stopped", "why", r.why)
			default:
				a.log.Error("recycle", "why", r.why, "err", err)
			}
		}
	}
}
