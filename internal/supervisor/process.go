package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// procState is where a process is in its life. Transitions happen under
// Pool.mu: starting → ready → (draining →) stopping → exited, or starting →
// stopping/exited.
type procState int

const (
	stateStarting procState = iota
	stateReady
	stateDraining
	stateStopping
	stateExited
)

func (s procState) String() string {
	return [...]string{"starting", "ready", "draining", "stopping", "exited"}[s]
}

const (
	probeInterval = 50 * time.Millisecond  // readiness poll (ANCM: 250 ms)
	dialTimeout   = 100 * time.Millisecond // one readiness connect on loopback
	termGrace     = time.Second            // SIGTERM follows the shutdown event after at most this
	drainBound    = 2 * time.Second        // output drain after the group is killed
)

// process is one child. The starter goroutine (runStart) owns it until it is
// ready or has failed; the owner goroutine (own) is the only one that waits
// for it. Fields set before the owner starts are read-only afterwards.
type process struct {
	slot   int
	spec   Spec
	isNext bool // started by Recycle for slot.next

	cmd      *exec.Cmd
	pid      int // also under Pool.mu, for Processes
	port     int
	addr     string
	token    string
	command  string
	fixed    bool // port came from ASPNETCORE_PORT
	started  time.Time
	out      *output
	notify   *notifier
	listener *os.File // socket activation: the bound socket, closed after start

	done   chan struct{} // closed once the process is reaped and its output drained
	cancel chan struct{} // closed when it is stopped while starting
	result chan error    // the start's outcome, for Recycle (buffered 1)

	// Set by the owner before done is closed.
	exitCode int
	exitSig  string
	uptime   time.Duration

	sigMu  sync.Mutex
	reaped bool // protected by sigMu: no signal may be sent once the pid is reaped

	// Protected by Pool.mu.
	state       procState
	outstanding int
	readyAt     time.Time
	canceled    bool
	gone        chan struct{} // Lease.Exited: closed when stopping starts or at the exit
	goneClosed  bool          // gone is closed; a ready process with it set has exited
	drainStop   chan struct{}
	drainClosed bool
}

func (p *Pool) newProcessLocked(slot int, spec Spec) *process {
	return &process{
		slot:      slot,
		spec:      spec,
		done:      make(chan struct{}),
		cancel:    make(chan struct{}),
		result:    make(chan error, 1),
		gone:      make(chan struct{}),
		drainStop: make(chan struct{}),
	}
}

func (pr *process) closeGoneLocked() {
	if !pr.goneClosed {
		pr.goneClosed = true
		close(pr.gone)
	}
}

// servingLocked reports whether pr may get new leases: it is ready and has
// not exited (its owner closes gone as soon as wait(2) reports the exit, a
// while before finish clears the slot).
func (pr *process) servingLocked() bool {
	return pr != nil && pr.state == stateReady && !pr.goneClosed
}

func (pr *process) cancelDrainLocked() {
	if !pr.drainClosed {
		pr.drainClosed = true
		close(pr.drainStop)
	}
}

// signal sends sig to the process group. It never signals after the pid was
// reaped, so a reused pid cannot be hit.
func (pr *process) signal(sig syscall.Signal) error {
	pr.sigMu.Lock()
	defer pr.sigMu.Unlock()
	if pr.reaped || pr.pid == 0 {
		return os.ErrProcessDone
	}
	return syscall.Kill(-pr.pid, sig)
}

// exitDesc describes the exit for logs and RapidFailError.
func (pr *process) exitDesc() string {
	if pr.exitSig != "" {
		return fmt.Sprintf("pid %d killed by %s after %s", pr.pid, pr.exitSig, pr.uptime.Round(time.Millisecond))
	}
	return fmt.Sprintf("pid %d exited with code %d after %s", pr.pid, pr.exitCode, pr.uptime.Round(time.Millisecond))
}

var errCanceled = errors.New("start canceled")

// runStart spawns pr and waits until it is ready, failed or was stopped.
// Like ANCM V2 it tries twice, on a new port, when the process exited while
// starting and someone else holds the port.
func (p *Pool) runStart(pr *process) {
	var earlier []byte
	for attempt := 1; ; attempt++ {
		if err := p.spawn(pr); err != nil {
			p.finish(pr)
			p.startFailed(pr, err)
			return
		}
		res := p.awaitReady(pr)
		if res == readyOK {
			switch p.markReady(pr) {
			case stateReady:
				pr.result <- nil
				return
			case stateExited:
				res = readyExited
			default:
				res = readyCanceled
			}
		}
		switch res {
		case readyCanceled:
			p.stopSequence(pr, "stopped while starting")
			pr.result <- upstream.ErrShuttingDown
			return
		case readyTimeout:
			p.log.Warn("killing process that did not become ready", "pid", pr.pid, "port", pr.port,
				"startup_timeout", pr.spec.StartupTimeout)
			_ = pr.signal(syscall.SIGKILL)
			<-pr.done
			p.startFailed(pr, &upstream.StartError{
				Command:  pr.command,
				Reason:   fmt.Sprintf("not listening on port %d after %s", pr.port, pr.spec.StartupTimeout),
				ExitCode: -1,
				Output:   string(joinCapped(earlier, pr.out.captured())),
			})
			return
		}
		// readyExited
		<-pr.done
		out := joinCapped(earlier, pr.out.captured())
		if attempt == 1 && !pr.fixed && !pr.spec.SocketActivation && !portFree(pr.port) {
			p.log.Warn("process exited during startup and its port is taken; retrying on a new port",
				"pid", pr.pid, "port", pr.port)
			if npr := p.retry(pr); npr != nil {
				earlier, pr = out, npr
				continue
			}
			pr.result <- upstream.ErrShuttingDown
			return
		}
		se := &upstream.StartError{Command: pr.command, Reason: "process exited during startup",
			ExitCode: pr.exitCode, Signal: pr.exitSig, Output: string(out)}
		if pr.exitSig != "" {
			se.ExitCode = -1
		}
		p.startFailed(pr, se)
		return
	}
}

// retry replaces pr in its slot with a fresh process for a second
// attempt, or returns nil if pr was stopped meanwhile.
func (p *Pool) retry(pr *process) *process {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.canceled || p.closed || pr.slot >= len(p.slots) {
		return nil
	}
	s := p.slots[pr.slot]
	npr := p.newProcessLocked(pr.slot, pr.spec)
	npr.isNext = pr.isNext
	npr.result = pr.result // Recycle waits on the first attempt's channel
	switch {
	case s.cur == pr:
		s.cur = npr
	case s.next == pr:
		s.next = npr
	default:
		return nil
	}
	return npr
}

// startFailed takes a failed start out of its slot and, unless it was
// canceled, records the failure for waiters and the rapid-fail window.
func (p *Pool) startFailed(pr *process, err error) {
	p.mu.Lock()
	if pr.slot < len(p.slots) {
		s := p.slots[pr.slot]
		if s.cur == pr {
			s.cur = nil
		}
		if s.next == pr {
			s.next = nil
		}
	}
	canceled := pr.canceled || errors.Is(err, errCanceled)
	if !canceled {
		p.failSeq++
		p.startErr = err
		desc := err.Error()
		if pr.pid != 0 {
			desc = pr.exitDesc()
		}
		p.countFailureLocked(desc)
	}
	p.broadcastLocked()
	p.mu.Unlock()
	if canceled {
		pr.result <- upstream.ErrShuttingDown
		return
	}
	var se *upstream.StartError
	if errors.As(err, &se) && se.Output != "" {
		p.log.Error("app failed to start", "pid", pr.pid, "err", err, "output", se.Output)
	} else {
		p.log.Error("app failed to start", "pid", pr.pid, "err", err)
	}
	pr.result <- err
}

// markReady makes pr ready (or, for Recycle, swaps it in) and returns the
// state it found: stateReady on success, else what stopped it.
func (p *Pool) markReady(pr *process) procState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.state != stateStarting {
		return pr.state
	}
	if pr.goneClosed { // exited just as it became ready: a failed start
		return stateExited
	}
	pr.state = stateReady
	pr.readyAt = time.Now()
	p.log.Info("process ready", "pid", pr.pid, "port", pr.port, "took", pr.readyAt.Sub(pr.started).Round(time.Millisecond))
	if pr.isNext && pr.slot < len(p.slots) {
		s := p.slots[pr.slot]
		old := s.cur
		s.cur, s.next = pr, nil
		pr.isNext = false
		if old != nil {
			p.retireLocked(old, "recycle", true)
		}
	}
	p.broadcastLocked()
	return stateReady
}

// retireLocked takes pr out of service: a starting process is canceled (its
// starter stops it), a ready one is drained (if drain and DrainTimeout > 0)
// and then stopped by a goroutine of its own.
func (p *Pool) retireLocked(pr *process, why string, drain bool) {
	switch pr.state {
	case stateStarting:
		pr.state = stateStopping
		pr.canceled = true
		close(pr.cancel)
		pr.closeGoneLocked()
		p.retiring[pr] = struct{}{}
	case stateReady:
		p.retiring[pr] = struct{}{}
		if drain && pr.spec.DrainTimeout > 0 {
			pr.state = stateDraining
			p.wg.Go(func() { p.runDrain(pr, why) })
			return
		}
		pr.state = stateStopping
		pr.closeGoneLocked()
		p.wg.Go(func() { p.stopSequence(pr, why) })
	}
}

// finish records that pr is gone. The owner calls it once the process is
// reaped; the starter calls it for a process that never ran.
func (p *Pool) finish(pr *process) {
	p.mu.Lock()
	prev := pr.state
	pr.state = stateExited
	pr.closeGoneLocked()
	delete(p.retiring, pr)
	if prev == stateReady {
		if pr.slot < len(p.slots) && p.slots[pr.slot].cur == pr {
			p.slots[pr.slot].cur = nil
		}
		p.countFailureLocked(pr.exitDesc())
	}
	p.broadcastLocked()
	p.mu.Unlock()

	if pr.pid != 0 {
		attrs := []any{"pid", pr.pid, "uptime", pr.uptime.Round(time.Millisecond)}
		if pr.exitSig != "" {
			attrs = append(attrs, "signal", pr.exitSig)
		} else {
			attrs = append(attrs, "exit_code", pr.exitCode)
		}
		switch prev {
		case stateReady:
			p.log.Warn("process exited unexpectedly; the next request starts a new one", attrs...)
		case stateStarting:
			p.log.Warn("process exited during startup", attrs...)
		default:
			p.log.Info("process exited", attrs...)
		}
	}
	close(pr.done)
}

// spawn builds the command for pr and starts it, then starts its owner.
func (p *Pool) spawn(pr *process) error {
	spec := pr.spec
	written := strings.TrimSpace(strings.Join(append([]string{spec.Path}, spec.Args...), " "))
	fail := func(reason string, err error) error {
		return &upstream.StartError{Command: written, Reason: reason, ExitCode: -1, Err: err}
	}
	port, fixed, err := portFromEnv(spec.Env)
	if err != nil {
		return fail("invalid ASPNETCORE_PORT", err)
	}
	if fixed {
		if err := p.awaitPortHolders(pr, port); err != nil {
			return err
		}
	}
	select {
	case <-pr.cancel:
		return errCanceled
	default:
	}

	var extra []string
	var ln *os.File
	if spec.SocketActivation {
		ln, port, err = bindLoopback(port)
		if err != nil {
			return fail("could not bind the app socket", err)
		}
		extra = append(extra, "LISTEN_FDS=1", "LISTEN_FDNAMES=http", shimEnv+"=1")
	} else if !fixed {
		if port, err = p.pickPort(); err != nil {
			return fail("could not choose a port", err)
		}
	}
	closeLn := func() {
		if ln != nil {
			ln.Close()
		}
	}
	token := tokenFromEnv(spec.Env)
	if token == "" {
		if token, err = newToken(); err != nil {
			closeLn()
			return fail("could not make a pairing token", err)
		}
	}
	var nt *notifier
	if spec.NotifyReady {
		if nt, err = newNotifier(); err != nil {
			closeLn()
			return fail("could not create the notify socket", err)
		}
		extra = append(extra, "NOTIFY_SOCKET="+nt.path)
	}
	env := childEnv(spec.Env, port, token, extra)

	lookup := config.EnvLookup(env)
	pathEnv, _ := lookup("PATH")
	prog, err := config.ResolveProgram(spec.Dir, config.Expand(spec.Path, lookup), pathEnv)
	cleanup := func() {
		closeLn()
		if nt != nil {
			nt.close()
		}
	}
	if err != nil {
		cleanup()
		return fail("program not found", err)
	}
	args := make([]string, len(spec.Args))
	for i, a := range spec.Args {
		args[i] = config.Expand(a, lookup)
	}
	command := commandLine(prog, args)

	cmd := exec.Command(prog, args...)
	if spec.SocketActivation {
		exe, err := os.Executable()
		if err != nil {
			cleanup()
			return fail("could not find the gatehouse executable for the socket shim", err)
		}
		cmd = exec.Command(exe, append([]string{prog}, args...)...)
		cmd.ExtraFiles = []*os.File{ln}
	}
	cmd.Dir = spec.Dir
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	out := newOutput(spec, p.log)
	out.attach(cmd)

	select {
	case <-pr.cancel: // stopped while the command was prepared
		out.closeWriters()
		out.closeReaders()
		cleanup()
		return errCanceled
	default:
	}
	started := time.Now()
	err = cmd.Start()
	out.closeWriters()
	closeLn()
	if err != nil {
		out.closeReaders()
		if nt != nil {
			nt.close()
		}
		return fail("could not run the program", err)
	}

	spec.Keeper.Add(cmd.Process.Pid) // with Setpgid the pid is the group id
	p.mu.Lock()
	pr.sigMu.Lock() // signal reads pid under sigMu only (killAll)
	pr.pid = cmd.Process.Pid
	pr.sigMu.Unlock()
	pr.cmd, pr.port, pr.fixed = cmd, port, fixed
	pr.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	pr.token, pr.command, pr.started = token, command, started
	pr.out, pr.notify = out, nt
	p.mu.Unlock()

	p.log.Info("process started", "pid", pr.pid, "port", port, "command", command, "slot", pr.slot)
	out.start(&p.wg, p.log.With("pid", pr.pid), pr.pid)
	if nt != nil {
		p.wg.Go(nt.run)
	}
	p.wg.Go(func() { p.own(pr) })
	return nil
}

// awaitPortHolders waits until no retiring process holds the fixed port.
func (p *Pool) awaitPortHolders(pr *process, port int) error {
	p.mu.Lock()
	var dones []<-chan struct{}
	for o := range p.retiring {
		if o.port == port {
			dones = append(dones, o.done)
		}
	}
	p.mu.Unlock()
	for _, d := range dones {
		select {
		case <-d:
		case <-pr.cancel:
			return errCanceled
		}
	}
	return nil
}

// own is the owner goroutine: it waits for the process to exit, kills what
// is left of its group while the exited process still holds the group id,
// reaps it, drains its output and reports it gone.
func (p *Pool) own(pr *process) {
	werr := waitExited(pr.pid)
	// Tell lease holders now, not after the drain below: the proxy waits only
	// briefly for Exited before it calls a reset connection the app's fault
	// instead of retrying it on a new process.
	p.mu.Lock()
	pr.closeGoneLocked()
	p.mu.Unlock()
	pr.sigMu.Lock()
	if werr == nil {
		_ = syscall.Kill(-pr.pid, syscall.SIGKILL) // grandchildren; ESRCH when none are left
	}
	// Before the reap: the zombie keeps the group id from being reused.
	pr.spec.Keeper.Remove(pr.pid)
	_ = pr.cmd.Wait() // the status is read from ProcessState below
	pr.reaped = true
	pr.sigMu.Unlock()

	if !pr.out.drain(drainBound) {
		p.log.Warn("app output still open after the process group was killed; closed it", "pid", pr.pid)
	}
	if pr.notify != nil {
		pr.notify.close()
	}
	pr.exitCode, pr.exitSig = exitStatus(pr.cmd.ProcessState)
	pr.uptime = time.Since(pr.started)
	p.finish(pr)
}

type readiness int

const (
	readyOK readiness = iota
	readyExited
	readyTimeout
	readyCanceled
)

// awaitReady is the readiness select: ready, exited, startup timeout, or
// stopped while starting.
func (p *Pool) awaitReady(pr *process) readiness {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if p.probeLoop(ctx, pr) {
			close(ready)
		}
	})
	defer func() { cancel(); wg.Wait() }()

	timer := time.NewTimer(max(pr.spec.StartupTimeout, 0))
	defer timer.Stop()
	select {
	case <-ready:
		return readyOK
	case <-pr.done:
		return readyExited
	case <-pr.cancel:
		return readyCanceled
	case <-timer.C:
	}
	cancel()
	wg.Wait()
	select {
	case <-ready:
		return readyOK
	default:
	}
	// Last chance, so that 0 means "check once".
	cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
	defer ccancel()
	if p.probeOnce(cctx, pr) {
		return readyOK
	}
	select {
	case <-pr.done:
		return readyExited
	default:
		return readyTimeout
	}
}

// probeLoop polls readiness until it holds (true) or ctx ends (false).
func (p *Pool) probeLoop(ctx context.Context, pr *process) bool {
	if pr.notify != nil {
		select {
		case <-pr.notify.ready:
		case <-ctx.Done():
			return false
		}
	}
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		if p.probe(ctx, pr) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (p *Pool) probeOnce(ctx context.Context, pr *process) bool {
	if pr.notify != nil {
		select {
		case <-pr.notify.ready:
		default:
			return false
		}
	}
	return p.probe(ctx, pr)
}

// probe checks once: the readiness path answers 2xx, or else the port
// accepts a connection.
func (p *Pool) probe(ctx context.Context, pr *process) bool {
	if path := pr.spec.ReadinessProbe; path != "" {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pr.addr+path, nil)
		if err != nil {
			return false
		}
		req.Header.Set("MS-ASPNETCORE-TOKEN", pr.token)
		resp, err := p.client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 300 &&
			(pr.spec.SocketActivation || listenerInGroup(pr.port, pr.pid))
	}
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp4", pr.addr)
	if err != nil {
		return false
	}
	c.Close()
	return pr.spec.SocketActivation || listenerInGroup(pr.port, pr.pid)
}

// stopSequence stops pr gracefully: the ANCM shutdown event first (apps
// with IIS integration answer 202 and stop), then SIGTERM to the process
// group once the event was answered or after at most a second (apps without
// IIS integration only understand SIGTERM), then SIGKILL to the group when
// ShutdownTimeout has passed since the start. It returns once pr is gone.
func (p *Pool) stopSequence(pr *process, why string) {
	timeout := pr.spec.ShutdownTimeout
	p.mu.Lock()
	wasReady := !pr.readyAt.IsZero()
	p.mu.Unlock()
	p.log.Info("stopping process", "pid", pr.pid, "why", why)
	if timeout <= 0 {
		p.log.Warn("killing process", "pid", pr.pid, "why", "shutdownTimeLimit is 0")
		_ = pr.signal(syscall.SIGKILL)
		<-pr.done
		return
	}
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	var wg sync.WaitGroup
	evDone := make(chan struct{})
	if wasReady {
		wg.Go(func() {
			defer close(evDone)
			status, err := p.sendShutdown(ctx, pr)
			if err != nil {
				p.log.Info("shutdown event not delivered", "pid", pr.pid, "err", err)
				return
			}
			p.log.Info("sent shutdown event", "pid", pr.pid, "status", status)
		})
	} else {
		close(evDone)
	}
	grace := time.NewTimer(min(termGrace, timeout/2))
	select {
	case <-evDone:
	case <-grace.C:
	case <-pr.done:
	case <-p.hurry:
	}
	grace.Stop()
	_ = pr.signal(syscall.SIGTERM)
	select {
	case <-pr.done:
	case <-deadline.C:
		// Logged before the kill, so the record exists once Stop returns.
		p.log.Warn("process did not stop within shutdownTimeLimit; killing it",
			"pid", pr.pid, "after", time.Since(start).Round(time.Millisecond))
		_ = pr.signal(syscall.SIGKILL)
		<-pr.done
	case <-p.hurry:
		if pr.signal(syscall.SIGKILL) == nil {
			p.log.Warn("killed process", "pid", pr.pid, "why", "Close deadline passed")
		}
		<-pr.done
	}
	cancel()
	wg.Wait()
}

// sendShutdown POSTs the ANCM shutdown event and returns the status.
func (p *Pool) sendShutdown(ctx context.Context, pr *process) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, shutdownURL(pr.addr, pr.spec.ApplPath), http.NoBody)
	if err != nil {
		return 0, err
	}
	req.Header.Set("MS-ASPNETCORE-EVENT", "shutdown")
	req.Header.Set("MS-ASPNETCORE-TOKEN", pr.token)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// shutdownURL is http://addr + ApplPath (when longer than "/") + "/iisintegration".
func shutdownURL(addr, applPath string) string {
	return "http://" + addr + strings.TrimRight(applPath, "/") + "/iisintegration"
}

// runDrain lets a recycled process finish its leases (until none is
// outstanding, DrainTimeout, or Stop), then stops it.
func (p *Pool) runDrain(pr *process, why string) {
	timer := time.NewTimer(pr.spec.DrainTimeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if pr.outstanding == 0 || pr.state != stateDraining {
			p.mu.Unlock()
			break
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
			continue
		case <-timer.C:
		case <-pr.drainStop:
		case <-pr.done:
		}
		break
	}
	p.mu.Lock()
	if pr.state == stateDraining {
		pr.state = stateStopping
		pr.closeGoneLocked()
	}
	n := pr.outstanding
	p.mu.Unlock()
	if n > 0 {
		p.log.Warn("stopping recycled process with requests in flight", "pid", pr.pid, "outstanding", n)
	}
	p.stopSequence(pr, why)
}
