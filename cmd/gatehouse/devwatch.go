package main

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gatehouse/gatehouse/internal/app"
)

// devDebounce is how long serve --watch waits after the last change in an
// app's folder before it recycles the app: an editor's save, a build or a
// git checkout writes many files in a burst, and they make one restart.
const devDebounce = 300 * time.Millisecond

// devWatcher recycles an app when a file in its folder changes (serve
// --watch), as pm2 --watch and dotnet watch do. It ignores what changes
// without a code change: app_offline.htm and web.config (the app reacts to
// those itself), the stdout log folder, *.log files, version-control and
// dependency folders (.git, node_modules, __pycache__) and editors'
// temporary files.
type devWatcher struct {
	app    *app.App
	log    *slog.Logger
	w      *fsnotify.Watcher
	skip   string // the stdout log folder, ignored ("" none)
	cancel context.CancelFunc
	done   chan struct{}
}

// watchApp starts watching a's folder and every folder below it.
func watchApp(a *app.App, log *slog.Logger) (*devWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	cfg := a.Config()
	d := &devWatcher{app: a, log: log.With("app", appName(a.Site(), a.Path())), w: w, done: make(chan struct{})}
	// The stdout log folder, unless it is the app's own folder (the
	// default prefix is .\aspnetcore-stdout): *.log files are ignored anyway.
	if dir := filepath.Dir(cfg.StdoutLogFile); cfg.StdoutLogFile != "" && dir != filepath.Clean(cfg.Dir) {
		d.skip = dir
	}
	if err := d.addTree(cfg.Dir); err != nil {
		w.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.run(ctx) // ends with Close
	d.log.Info("watching the app's folder; a change recycles the app", "dir", cfg.Dir)
	return d, nil
}

// Close stops watching and waits for a recycle under way to end.
func (d *devWatcher) Close() {
	d.cancel()
	<-d.done
	d.w.Close()
}

// ignoredDir reports whether changes under the folder called name are not
// code.
func (d *devWatcher) ignoredDir(path string) bool {
	name := filepath.Base(path)
	return path == d.skip || name == "node_modules" || name == "__pycache__" || (strings.HasPrefix(name, ".") && name != ".")
}

// ignoredFile reports whether a change of the file at path is not code.
func (d *devWatcher) ignoredFile(path string) bool {
	name := strings.ToLower(filepath.Base(path))
	return name == "app_offline.htm" || name == "web.config" || strings.HasSuffix(name, ".log") ||
		strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, "~") || strings.HasPrefix(name, ".#") ||
		strings.HasSuffix(name, ".pyc") || d.ignoredDir(filepath.Dir(path))
}

// addTree watches root and the folders below it, but ignored ones.
func (d *devWatcher) addTree(root string) error {
	return filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil // a folder that went away meanwhile: nothing to watch
		}
		if path != root && d.ignoredDir(path) {
			return filepath.SkipDir
		}
		return d.w.Add(path)
	})
}

// run collects changes and recycles the app devDebounce after the last.
func (d *devWatcher) run(ctx context.Context) {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var changed []string
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-d.w.Errors:
			if !ok {
				return
			}
			d.log.Warn("watching the app's folder", "err", err)
		case ev, ok := <-d.w.Events:
			if !ok {
				return
			}
			if ev.Op.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() && !d.ignoredDir(ev.Name) {
					_ = d.addTree(ev.Name) // a new folder: watch it (and what came with it)
				}
			}
			if d.ignoredFile(ev.Name) || ev.Op == fsnotify.Chmod {
				continue
			}
			if !slices.Contains(changed, ev.Name) {
				changed = append(changed, ev.Name)
			}
			timer.Reset(devDebounce)
		case <-timer.C:
			files := changed
			changed = nil
			d.log.Info("the app's files changed; recycling", "files", files)
			wg.Wait() // one recycle at a time
			wg.Go(func() {
				if err := d.app.Recycle(ctx); err != nil && ctx.Err() == nil {
					d.log.Error("recycle after a change", "err", err)
				}
			})
		}
	}
}
