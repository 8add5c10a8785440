package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// operatorStateEnv hands the operator's state to the Gatehouse an upgrade
// starts (JSON of savedState); the new one removes it from its
// environment before it opens an app.
const operatorStateEnv = "GATEHOUSE_OPERATOR_STATE"

// opState is what the operator changed at run time that no configuration
// file says: the apps stopped with `gatehouse stop`, the process counts set
// with `gatehouse scale`. It outlives a reload
// (the apps keep their pools), goes to the new binary of an upgrade (in
// its environment), and, once `gatehouse save` asked for it, is kept in a
// state file beside the pid file (or the admin socket) that serve reads
// at start, so it outlives a restart of Gatehouse too.
type opState struct {
	// file is the state file's path; "" when Gatehouse has neither a pid
	// file nor an admin socket to put it beside.
	file string

	mu      sync.Mutex      // protects stopped, scale, saved
	stopped map[string]bool // app names ("site/path") the operator stopped
	scale   map[string]int  // process counts by app name (gatehouse scale)
	saved   bool            // the file is kept current (gatehouse save)
}

// savedState is the state file's JSON (and operatorStateEnv's).
type savedState struct {
	// Stopped lists the apps the operator stopped, "SITE/PATH".
	Stopped []string `json:"stopped"`
	// Scale is the process count of each app the operator scaled.
	Scale map[string]int `json:"scale,omitempty"`
}

// stateFile returns the state file's path: beside the pid file
// (gatehouse.pid → gatehouse.state), else beside the admin socket; ""
// when there is neither.
func stateFile(pidFile, socket string) string {
	base := pidFile
	if base == "" && socket != "off" {
		base = socket
	}
	if base == "" {
		return ""
	}
	return strings.TrimSuffix(base, filepath.Ext(base)) + ".state"
}

// loadOpState returns the operator's state to start with: the one an
// upgrading Gatehouse handed over, else the saved one in file, else none.
// It removes operatorStateEnv from the environment, so apps do not
// inherit it.
func loadOpState(file string, log *slog.Logger) (*opState, error) {
	s := &opState{file: file, stopped: map[string]bool{}, scale: map[string]int{}}
	if file != "" {
		if _, err := os.Stat(file); err == nil {
			s.saved = true
		}
	}
	var b []byte
	from := ""
	if env, ok := os.LookupEnv(operatorStateEnv); ok {
		os.Unsetenv(operatorStateEnv)
		b, from = []byte(env), "the upgrading gatehouse"
	} else if s.saved {
		var err error
		if b, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("read the state file: %w", err)
		}
		from = file
	}
	if b == nil {
		return s, nil
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state from %s: %w", from, err)
	}
	for _, name := range st.Stopped {
		s.stopped[name] = true
	}
	if len(st.Stopped) > 0 {
		log.Info("apps stay stopped by the operator", "apps", st.Stopped, "from", from)
	}
	for name, n := range st.Scale {
		if n > 0 {
			s.scale[name] = n
		}
	}
	if len(s.scale) > 0 {
		log.Info("apps keep the operator's process counts", "scale", s.scale, "from", from)
	}
	return s, nil
}

// isStopped reports whether the operator stopped the app called name.
func (s *opState) isStopped(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped[name]
}

// setStopped records a stop (or a start) of the app called name and, when
// saved, writes the state file.
func (s *opState) setStopped(name string, stopped bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stopped {
		s.stopped[name] = true
	} else {
		delete(s.stopped, name)
	}
	if !s.saved {
		return nil
	}
	return s.writeLocked()
}

// processes returns the process count the operator set for the app
// called name; 0 for none.
func (s *opState) processes(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scale[name]
}

// setScale records a scale of the app called name and, when saved, writes
// the state file.
func (s *opState) setScale(name string, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scale[name] = n
	if !s.saved {
		return nil
	}
	return s.writeLocked()
}

// save writes the state file and keeps it current from now on, so the
// state outlives a restart of Gatehouse; forget removes it instead.
func (s *opState) save(forget bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == "" {
		return errors.New("no place for the state file: start gatehouse with --pid-file FILE or an admin socket")
	}
	if forget {
		s.saved = false
		if err := os.Remove(s.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the state file: %w", err)
		}
		return nil
	}
	s.saved = true
	return s.writeLocked()
}

// env returns the environment entry that hands the state to an upgrade.
func (s *opState) env() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(s.snapshotLocked()) // a list of strings always encodes
	return operatorStateEnv + "=" + string(b)
}

func (s *opState) snapshotLocked() savedState {
	st := savedState{Stopped: []string{}, Scale: maps.Clone(s.scale)}
	for name := range s.stopped {
		st.Stopped = append(st.Stopped, name)
	}
	slices.Sort(st.Stopped)
	return st
}

// writeLocked replaces the state file whole (write beside, rename).
func (s *opState) writeLocked() error {
	b, err := json.MarshalIndent(s.snapshotLocked(), "", "  ")
	if err != nil {
		return fmt.Errorf("encode the state: %w", err)
	}
	tmp := s.file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("write the state file: %w", err)
	}
	if err := os.Rename(tmp, s.file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the state file: %w", err)
	}
	return nil
}
