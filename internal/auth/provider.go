package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// reloadDelay coalesces the events of one file write or replacement.
const reloadDelay = 100 * time.Millisecond

// Provider holds the credentials an app's authentication stage checks
// against: the keytab, the Basic users and the groups, each loaded when a
// policy first needs it (Require) and re-read when its file changes
// (Watch). Its replay cache (Settings.Replay, else its own) outlives
// web.config reloads. It is safe for concurrent use.
type Provider struct {
	set        Settings
	log        *slog.Logger
	keytabPath string

	mu                    sync.Mutex // serialises loads
	needKeytab, needUsers bool

	// needed is closed when Require first loads a file: Watch starts
	// watching then, so an app without authentication costs no watcher.
	needed     chan struct{}
	neededOnce sync.Once

	neg    atomic.Pointer[negotiator]
	users  atomic.Pointer[users]
	groups atomic.Pointer[groups]
	replay *ReplayCache
}

// NewProvider returns a Provider for a site's settings. Nothing is read
// until Require. log nil means slog.Default().
func NewProvider(s Settings, log *slog.Logger) *Provider {
	if log == nil {
		log = slog.Default()
	}
	replay := s.Replay
	if replay == nil {
		replay = NewReplayCache()
	}
	return &Provider{set: s, log: log, keytabPath: KeytabPath(s.Keytab), replay: replay, needed: make(chan struct{})}
}

// Settings returns the settings the Provider was made with.
func (p *Provider) Settings() Settings { return p.set }

// Require loads what a policy that uses Windows and/or Basic needs and
// has not been loaded yet: the keytab for Windows, the user file for
// Basic, the group file for either. An error names the file and says what
// is wrong with it; nothing is changed then.
func (p *Provider) Require(windows, basic bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if windows || basic {
		defer p.neededOnce.Do(func() { close(p.needed) })
	}
	if windows && p.neg.Load() == nil {
		if err := p.loadKeytab(); err != nil {
			return err
		}
		p.needKeytab = true
	}
	if basic && p.users.Load() == nil {
		if p.set.UserFile == "" {
			return errors.New("basicAuthentication is enabled but the site config names no authentication.userFile")
		}
		if err := p.loadUsers(); err != nil {
			return err
		}
		p.needUsers = true
	}
	if (windows || basic) && p.set.GroupFile != "" && p.groups.Load() == nil {
		if err := p.loadGroups(); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) loadKeytab() error {
	kt, err := keytab.Load(p.keytabPath)
	if err != nil {
		return fmt.Errorf("windowsAuthentication: keytab %s (site config authentication.keytab, else KRB5_KTNAME, else %s): %w", p.keytabPath, DefaultKeytab, err)
	}
	p.neg.Store(&negotiator{
		kt: kt, sname: servicePrincipal(p.set.ServicePrincipal), skew: p.set.skew(), seen: p.replay,
		pacLog: log.New(io.Discard, "", 0),
	})
	return nil
}

func (p *Provider) loadUsers() error {
	u, err := loadUsers(p.set.UserFile)
	if err != nil {
		return fmt.Errorf("basicAuthentication: user file: %w", err)
	}
	p.users.Store(u)
	return nil
}

func (p *Provider) loadGroups() error {
	g, err := loadGroups(p.set.GroupFile)
	if err != nil {
		return fmt.Errorf("authentication group file: %w", err)
	}
	p.groups.Store(&g)
	return nil
}

// groupsOf returns the groups the group file gives user.
func (p *Provider) groupsOf(user string) []string {
	g := p.groups.Load()
	if g == nil {
		return nil
	}
	return (*g)[strings.ToLower(user)]
}

// Watch re-reads the keytab, the user file and the group file when they
// change (written in place or replaced), until ctx ends. It starts
// watching once a policy first needs them (Require). A file that no
// longer loads is logged and the previous contents stay in force. The
// caller owns the goroutine that runs it.
func (p *Provider) Watch(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-p.needed:
	}
	files := map[string]func() error{}
	files[p.keytabPath] = p.reloadIf(&p.needKeytab, p.loadKeytab)
	files[p.set.UserFile] = p.reloadIf(&p.needUsers, p.loadUsers)
	files[p.set.GroupFile] = p.reloadIf(nil, p.loadGroups)
	delete(files, "")
	if len(files) == 0 {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		p.log.Warn("cannot watch the authentication files; changes need a restart", "err", err)
		return
	}
	defer w.Close()
	dirs := map[string]bool{}
	for f := range files {
		d := filepath.Dir(f)
		if dirs[d] {
			continue
		}
		dirs[d] = true
		if err := w.Add(d); err != nil {
			p.log.Warn("cannot watch an authentication file's folder; changes need a restart", "dir", d, "err", err)
		}
	}
	pending := map[string]bool{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if _, ok := files[filepath.Clean(ev.Name)]; ok {
				pending[filepath.Clean(ev.Name)] = true
				timer.Reset(reloadDelay)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			p.log.Warn("authentication file watcher", "err", err)
		case <-timer.C:
			for f := range pending {
				if err := files[f](); err != nil {
					p.log.Error("authentication file changed but cannot be used; the previous contents stay in force", "file", f, "err", err)
				} else {
					p.log.Info("authentication file reloaded", "file", f)
				}
			}
			clear(pending)
		}
	}
}

// reloadIf returns a reload of a file that is re-read only once a policy
// has needed it (*need; for nil, once the groups were loaded).
func (p *Provider) reloadIf(need *bool, load func() error) func() error {
	return func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if need == nil && p.groups.Load() == nil || need != nil && !*need {
			return nil
		}
		return load()
	}
}
