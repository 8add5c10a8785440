// Package supervisor starts, watches and stops the processes of one app, the
// way ANCM's process manager does for an out-of-process app: lazily on the
// first request, on a random loopback port passed in ASPNETCORE_PORT, with a
// fresh pairing token in ASPNETCORE_TOKEN, restarted on the next request after
// a crash and cut off after rapidFailsPerMinute failures.
//
// A Pool holds Spec.Processes slots. Each child is owned by exactly one
// goroutine (see owner.go), which launches it, waits for readiness, serves,
// drains and stops it, and is the only writer of its state; the rest of the
// pool asks it to retire the process (Pool.retireLocked) and it acts on the
// request. A helper learns of the exit from wait(2) and wakes the owner,
// which marks the process exited and closes the leases' Exited channel at
// once (so the proxy can retry a GET on a new process), then kills what is
// left of its process group while the exited child still holds the group id
// (so no other process can be signalled by mistake), reaps it, drains its
// output and only then frees its slot. The owner reports each transition as
// an Event (events.go) once it has applied it under the pool's lock; the
// pool's log and Spec.Events consume them. Every goroutine a Pool starts
// ends by Close.
//
// Decisions where ANCM leaves a choice (docs/ancm-differences.md lists them
// for users):
//   - Readiness: the port accepts a TCP connection (probed every 0.5 ms at
//     first, backing off to 10 ms, see probe.go; ANCM polls every 250 ms)
//     and the listening socket belongs to the app's process group (its
//     inode found over sock_diag, else in /proc/net/tcp, and looked up in
//     the group's /proc/PID/fd, as ANCM checks the listener's PID is in its
//     job), or ReadinessProbe / NotifyReady when set. StartupTimeout 0
//     checks once.
//   - Ports: random ports come from ANCM's 10000–48000 less the kernel's
//     ephemeral range (ip_local_port_range, read once), so an outgoing
//     connection cannot be given an app's port between the free-port check
//     and the app's bind. If a starting process exits because its port was
//     taken anyway (its output says "address already in use", or someone
//     else holds the port), the start is tried again on a new port, up to 3
//     attempts (ANCM V2 makes 2), and only a last failure counts toward the
//     rapid-fail limit; the captured output of every attempt is kept.
//   - Rapid fails: a fixed one-minute window reset lazily (failwindow.go) that
//     counts crashes of ready processes, including clean exits, AND failed
//     starts (V2 counts only crashes; the docs say starts count too).
//   - Stop: the shutdown event (POST <ApplPath>/iisintegration) first when
//     Spec.ShutdownEvent asks for it, then SIGTERM to the group when the
//     event was answered or after 1 s, then SIGKILL to the group at
//     ShutdownTimeout. ASP.NET Core apps get both because only they
//     understand the event and only SIGTERM reaches the rest of the tree.
//   - exec.CommandContext's Cancel/WaitDelay are not used: the stop needs the
//     ordered event/SIGTERM/SIGKILL sequence, and the child's stdout/stderr
//     are plain pipe files, so os/exec starts no copying goroutines that
//     WaitDelay would have to bound; the owner drains them itself.
//   - Processes each get a slot; requests go to the ready process with the
//     fewest outstanding leases (ANCM: round-robin), ties in turn.
//   - Grandchildren that leave the process group (setsid) are not tracked;
//     everything else in the group dies with the app.
package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/monoclock"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Spec describes how to run an app. The Pool keeps its own copy; change it
// with Recycle.
type Spec struct {
	// Name is the app name used in logs.
	Name string
	// Path is processPath as written; it may contain %VAR%. At each start it
	// is expanded over the child's environment (including ASPNETCORE_PORT and
	// ASPNETCORE_TOKEN) and resolved with config.ResolveProgram against Dir
	// and the child's PATH.
	Path string
	// Args are the arguments, each %VAR%-expanded like Path.
	Args []string
	// Dir is the working directory of the app and the base for relative paths.
	Dir string
	// Env is the base environment of the child, KEY=VALUE. Each process also
	// gets ASPNETCORE_PORT, HTTP_PLATFORM_PORT and PORT set to its port, and
	// ASPNETCORE_TOKEN set to a fresh random token, replacing entries of those
	// names. A non-empty ASPNETCORE_PORT in Env fixes the port (it must be in
	// 1025–48000, as in ANCM, or the start fails) and a non-empty
	// ASPNETCORE_TOKEN fixes the token.
	Env []string
	// ApplPath is ASPNETCORE_APPL_PATH; the shutdown event is POSTed to
	// ApplPath (when longer than "/") + "/iisintegration".
	ApplPath string
	// ShutdownEvent sends a stopping process ANCM's shutdown event (POST
	// <ApplPath>/iisintegration) before SIGTERM. Only ASP.NET Core apps
	// understand it; to others it is a stray request in their log. false:
	// SIGTERM alone.
	ShutdownEvent bool
	// Processes is processesPerApplication; values below 1 mean 1.
	Processes int
	// StartupTimeout is how long a starting process may take to become ready.
	// 0 means "check once": the process must be ready on the first check.
	StartupTimeout time.Duration
	// ShutdownTimeout is how long a stopping process gets after the shutdown
	// event and SIGTERM before its process group is killed. 0 (or negative)
	// kills at once.
	ShutdownTimeout time.Duration
	// DrainTimeout is how long a process replaced by Recycle may keep serving
	// its in-flight leases before it is stopped. 0 stops it at once.
	DrainTimeout time.Duration
	// RapidFailsPerMinute is the number of failures (crashes of ready
	// processes and failed starts) allowed in a fixed one-minute window; once
	// the count exceeds it, starts are refused with *upstream.RapidFailError
	// until the window ends. 0 means the first failure blocks.
	RapidFailsPerMinute int
	// StdoutLog is the stdout log prefix. "" sends the app's output to the
	// logger, one record per line (attrs app, pid, stream); lines the logger
	// cannot keep up with are dropped and counted, never blocking the app.
	// Otherwise it is an absolute path prefix: stdout and stderr of each
	// process go to <prefix>_<UTC yyyyMMddHHmmss>_<pid>.log, where pid is
	// Gatehouse's own pid, as in ANCM; missing folders are created. Two starts
	// in the same second append to the same file. If the file cannot be
	// created, a warning is logged and output goes to the logger instead.
	StdoutLog string
	// StdoutLogMaxSize, if positive, caps the size of one log file: past it a
	// new file is started (see logfile.go for the names), always at a line
	// end (a line begun in a file is finished there, up to maxLine bytes
	// over). 0 = unlimited.
	StdoutLogMaxSize int64
	// StdoutLogMaxFiles, if positive, is how many log files with this prefix
	// are kept; the oldest are deleted when a new one is created. 0 = all.
	StdoutLogMaxFiles int
	// ReadinessProbe, if set, is a path (e.g. "/healthz") that must answer a
	// GET with 2xx before the process gets requests. "" = the port accepts a
	// TCP connection.
	ReadinessProbe string
	// H2C sends the readiness probe and the shutdown event over HTTP/2
	// with prior knowledge, for an app that speaks only that (the app's
	// protocol "h2c"). The default readiness check, a TCP connect, is the
	// same for both.
	H2C bool
	// NotifyReady makes the process ready only once it sends a datagram with
	// a line "READY=1" to the unix socket named in NOTIFY_SOCKET (sd_notify).
	NotifyReady bool
	// SocketActivation makes Gatehouse bind the app's socket and pass it as
	// fd 3 with LISTEN_FDS=1, LISTEN_FDNAMES=http and LISTEN_PID, through the
	// re-exec shim (see ShimMain). The app must use it instead of binding
	// ASPNETCORE_PORT itself.
	SocketActivation bool
	// MaxQueued is how many Acquire calls may wait for a process at once; the
	// next gets upstream.ErrQueueFull. 0 = no limit; negative = none may wait.
	MaxQueued int
	// IdleTimeout, if positive, stops the processes after this long with no
	// lease acquired or outstanding; the next Acquire starts them again.
	IdleTimeout time.Duration
	// Keeper, if set, is told each process group at its start and again once
	// it is dead, so that the groups still alive are killed if Gatehouse dies
	// (even by SIGKILL). nil means no keeper: Pdeathsig alone then kills only
	// the direct child. The Pool does not own it.
	Keeper *Keeper
	// Events, if set, is called with every lifecycle event of the pool's
	// processes (see Event), after the pool has applied it and outside its
	// lock, on the goroutine that owns the process (RecycleConditionMet,
	// which no one process owns, comes from the pool's policy loop before
	// the recycle it starts): events of one process arrive in order, events
	// of different processes may interleave. It must
	// not block for long; it may call the Pool's read methods (Processes,
	// Status). Metrics and status pages hang here. nil means none.
	Events func(Event)
	// AppPool holds the application-pool settings: identity, umask, working
	// folder, resource limits and recycling conditions (see AppPool). The
	// zero value changes nothing.
	AppPool AppPool
}

// ProcessInfo is a snapshot of one process, for status pages and tests.
type ProcessInfo struct {
	Slot        int
	PID         int // 0 while the process is being spawned
	Port        int
	Addr        string
	Started     time.Time // zero while the process is being spawned
	Ready       time.Time // zero until it is ready
	State       string    // "starting", "ready", "draining", "stopping"
	Outstanding int       // leases not yet released: requests in flight
	Requests    int       // leases handed out, including those outstanding
}

// Pool runs the processes of one app. Create it with NewPool; it must not be
// copied. All methods are safe for concurrent use.
type Pool struct {
	log       *slog.Logger
	now       func() time.Time    // clock of the rapid-fail window and recycling (withClock)
	pickPort  func() (int, error) // chooses an app's port (withPickPort)
	shell     string              // socket-activation shim, see shimCommand (withShell)
	client    *http.Client        // shutdown events and readiness probes
	h2c       *http.Client        // the same for processes spoken to over h2c (Spec.H2C)
	wg        sync.WaitGroup      // every goroutine the pool starts
	closing   chan struct{}       // closed by Close
	hurry     chan struct{}       // closed when Close's ctx ends: stops kill at once
	recycle   sync.Mutex          // serialises Recycle
	recycling atomic.Int32        // Recycle calls under way, for Status
	hurryOnce sync.Once

	mu sync.Mutex
	// protects everything below, and the state fields of every process
	pol        policyState // recycling conditions (recycle_policy.go)
	spec       Spec
	slots      []*slot
	retiring   map[*process]struct{} // draining or stopping, not yet exited
	changed    chan struct{}         // closed and replaced on every state change
	waiters    int                   // Acquire calls waiting
	leases     int                   // leases not yet released, on any process (retired and exited ones too)
	stopGen    uint64                // bumped by Stop, Halt and Close; waiters from before fail
	closed     bool
	halted     bool          // Halt until Resume: the operator stopped the app
	rr         int           // round-robin offset for ties in pickLocked
	lastUse    time.Duration // last Release that left no lease outstanding, last Acquire that gave up with none, or Start (monoclock.Now), for IdleTimeout
	fails      failWindow    // rapid-fail limit
	failSeq    uint64        // bumped on each failed start
	startErr   error         // the last failed start's error
	startErrAt time.Time     // when startErr happened
	lastExit   ExitInfo      // the last process that was reaped
	lastReady  time.Time     // when a process last became ready
	starts     int           // processes spawned
	crashes    int           // ready processes that exited on their own
}

// slot is one of the Processes positions. Fields are protected by Pool.mu.
type slot struct {
	cur  *process // starting or ready; serves Acquire once ready
	next *process // Recycle's replacement while it starts
}

// NewPool returns a Pool for spec. It starts nothing until Acquire or Start,
// except the idle timer's and the recycling policy's goroutines; call Close
// when done.
func NewPool(spec Spec, log *slog.Logger) *Pool {
	return newPool(spec, log)
}

// poolOption changes a Pool as newPool makes it, before the pool starts
// anything: tests replace the clock, the port picker, the shim and the
// policy tick with them.
type poolOption func(*Pool)

// withClock makes now the clock of the rapid-fail window, the status and the
// recycling conditions.
func withClock(now func() time.Time) poolOption { return func(p *Pool) { p.now = now } }

// withPickPort makes pick choose the ports of apps without a fixed port.
func withPickPort(pick func() (int, error)) poolOption {
	return func(p *Pool) { p.pickPort = pick }
}

// withShell makes shell the socket-activation shim (see shimCommand).
func withShell(shell string) poolOption { return func(p *Pool) { p.shell = shell } }

// withPolicyTick makes the recycling conditions be checked every tick.
func withPolicyTick(tick time.Duration) poolOption { return func(p *Pool) { p.pol.tick = tick } }

func newPool(spec Spec, log *slog.Logger, opts ...poolOption) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	spec = normalise(spec)
	p := &Pool{
		log:      log.With("app", spec.Name),
		now:      time.Now,
		pickPort: pickPort,
		shell:    shimShell(),
		client:   newEventClient(false),
		h2c:      newEventClient(true),
		pol:      policyState{tick: defaultPolicyTick, kick: make(chan struct{}, 1)},
		closing:  make(chan struct{}),
		hurry:    make(chan struct{}),
		spec:     spec,
		retiring: make(map[*process]struct{}),
		changed:  make(chan struct{}),
		lastUse:  monoclock.Now(),
	}
	p.slots = make([]*slot, spec.Processes)
	for i := range p.slots {
		p.slots[i] = &slot{}
	}
	for _, o := range opts {
		o(p)
	}
	p.wg.Go(p.idleLoop)
	p.wg.Go(p.policyLoop)
	return p
}

func normalise(s Spec) Spec {
	if s.Processes < 1 {
		s.Processes = 1
	}
	s.Args = append([]string(nil), s.Args...)
	s.AppPool.Recycling.Schedule = append([]time.Duration(nil), s.AppPool.Recycling.Schedule...)
	s.Env = append([]string(nil), s.Env...)
	return s
}

// broadcastLocked wakes everyone waiting on p.changed.
func (p *Pool) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Acquire returns a lease on a ready process. Empty slots are started (all
// at once) and the call waits until any process is ready, for at most the
// start's own StartupTimeout, or until ctx ends. Among ready processes it
// picks the one with the fewest outstanding leases (ties in turn).
//
// Errors: *upstream.StartError when the start the caller waited for failed;
// *upstream.RapidFailError when starts are cut off; upstream.ErrShuttingDown
// after Close, or when Stop is called while the caller waits;
// upstream.ErrQueueFull when MaxQueued callers already wait; ctx.Err().
// The caller must Release the lease.
func (p *Pool) Acquire(ctx context.Context) (*upstream.Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l, err := p.acquireLocked(ctx)
	if err != nil {
		p.gaveUpLocked()
	}
	return l, err
}

// acquireLocked is Acquire with p.mu held. It is a function of its own so
// that the compiler open-codes both functions' deferred calls (in one
// function, two defers times its returns were above the compiler's limit,
// and they ran through the runtime's slower deferreturn on every request).
func (p *Pool) acquireLocked(ctx context.Context) (*upstream.Lease, error) {
	gen, seq := p.stopGen, p.failSeq
	queued := false
	defer func() {
		if queued {
			p.waiters--
		}
	}()
	for {
		if p.closed || p.stopGen != gen {
			return nil, upstream.ErrShuttingDown
		}
		if p.halted {
			return nil, ErrHalted
		}
		failed := p.failSeq != seq
		var refused error
		if !failed {
			refused = p.fillLocked()
		}
		if pr := p.pickLocked(); pr != nil {
			return p.leaseLocked(pr), nil
		}
		if !p.startingLocked() {
			switch {
			case failed && p.startErr != nil:
				return nil, p.startErr
			case refused != nil:
				return nil, refused
			}
			// A start failed between our checks without leaving an error:
			// try again rather than give up.
			if failed {
				seq = p.failSeq
				continue
			}
			return nil, errors.New("acquire: no process could be started")
		}
		if !queued {
			if max := p.spec.MaxQueued; max < 0 || (max > 0 && p.waiters >= max) {
				return nil, upstream.ErrQueueFull
			}
			p.waiters++
			queued = true
		}
		if err := p.waitChangedLocked(ctx); err != nil {
			return nil, err
		}
	}
}

// gaveUpLocked notes a caller that leaves Acquire without a lease (its
// context ended, the start failed or timed out): a request that arrived
// and gave up is use of the app. When no other caller waits and no lease
// is outstanding, the pool's idle time starts now, as at the Release that
// leaves no lease outstanding, and the idle timer, which does not count
// while callers wait, is woken to count from now. (A caller that gets a
// lease reads no clock: its Release does.)
func (p *Pool) gaveUpLocked() {
	if p.waiters == 0 && p.leases == 0 {
		p.lastUse = monoclock.Now()
		p.broadcastLocked()
	}
}

// waitChangedLocked lets go of p.mu until the pool's state changes or ctx
// ends, and takes it again before it returns ctx's error or nil.
func (p *Pool) waitChangedLocked(ctx context.Context) error {
	ch := p.changed
	p.mu.Unlock()
	defer p.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start starts every empty slot (startAtBoot) and returns when all slots
// are ready, when a start fails (its error), or when ctx ends. It returns
// ErrHalted while the pool is halted.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	gen, seq := p.stopGen, p.failSeq
	for {
		if p.closed || p.stopGen != gen {
			return upstream.ErrShuttingDown
		}
		if p.halted {
			return ErrHalted
		}
		if p.failSeq != seq && p.startErr != nil {
			return p.startErr
		}
		p.lastUse = monoclock.Now()
		if err := p.fillLocked(); err != nil {
			return err
		}
		ready := 0
		for _, s := range p.slots {
			if s.cur != nil && s.cur.state == stateReady {
				ready++
			}
		}
		if ready == len(p.slots) {
			return nil
		}
		if err := p.waitChangedLocked(ctx); err != nil {
			return err
		}
	}
}

// fillLocked starts a process in every empty slot. It returns a
// *upstream.RapidFailError if starts are cut off, or ErrShuttingDown.
func (p *Pool) fillLocked() error {
	if p.closed {
		return upstream.ErrShuttingDown
	}
	for i, s := range p.slots {
		if s.cur != nil {
			continue
		}
		if err := p.admitLocked(); err != nil {
			return err
		}
		pr := newProcess(i, p.spec)
		s.cur = pr
		p.wg.Go(func() { p.run(pr) })
	}
	return nil
}

// admitLocked applies the rapid-fail window (see failWindow).
func (p *Pool) admitLocked() error {
	if refusal, _ := p.fails.admit(p.now(), p.spec.RapidFailsPerMinute); refusal != nil {
		return refusal
	}
	return nil
}

// pickLocked returns the ready process with the fewest outstanding leases,
// or nil.
func (p *Pool) pickLocked() *process {
	var best *process
	n := len(p.slots)
	for k := range n {
		pr := p.slots[(p.rr+k)%n].cur
		if !pr.servingLocked() {
			continue
		}
		if best == nil || pr.outstanding < best.outstanding {
			best = pr
		}
	}
	if best != nil {
		p.rr = (best.slot + 1) % n
	}
	return best
}

// startingLocked reports whether a slot is in transition, so that waiting
// makes sense: it holds a process that is not ready (its starter still owns
// it, even if it exited) or a ready one that has exited and is about to be
// cleared by its owner.
func (p *Pool) startingLocked() bool {
	for _, s := range p.slots {
		if s.cur != nil && !s.cur.servingLocked() {
			return true
		}
	}
	return false
}

func (p *Pool) leaseLocked(pr *process) *upstream.Lease {
	pr.outstanding++
	pr.requests++
	if pr.requests == pr.leaseCap {
		select { // the policy loop recycles it now
		case p.pol.kick <- struct{}{}:
		default:
		}
	}
	// No clock read for lastUse: a lease outstanding keeps the pool from
	// being idle (idleCandidateLocked) until its Release reads the clock.
	p.leases++
	if pr.releaseFn == nil {
		pr.releaseFn = func() { p.release(pr) }
	}
	l := upstream.NewLease(pr.addr, pr.token, pr.pid, pr.gone, pr.releaseFn)
	if pr.probeConn != nil {
		l.GiveConn(pr.probeConn, pr.readyAt)
		pr.probeConn = nil
	}
	return l
}

func (p *Pool) release(pr *process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr.outstanding--
	p.leases--
	if p.leases == 0 {
		// The pool can only be idle with no lease outstanding
		// (idleCandidateLocked), so its idle time always starts at the
		// release that left none: no other release reads the clock.
		p.lastUse = monoclock.Now()
	}
	if pr.outstanding == 0 {
		p.broadcastLocked() // drains and the idle timer wait for this
	}
}

// Stop stops every process gracefully (shutdown event and SIGTERM, SIGKILL
// after ShutdownTimeout) and waits until they have exited or ctx ends; the
// stop goes on in the background after ctx ends. Callers waiting in Acquire
// get upstream.ErrShuttingDown. The pool stays usable: a later Acquire starts
// the app again. Used for app_offline.htm.
func (p *Pool) Stop(ctx context.Context) error { return p.stop(ctx, false) }

// ErrHalted is what Acquire and Start return while the pool is halted. It
// wraps upstream.ErrShuttingDown: requests get 503.
var ErrHalted = upstream.ErrStopped

// Halt is the operator's stop: it stops every process as Stop does and keeps
// the pool down until Resume. Meanwhile Acquire and Start return ErrHalted
// and Status says "stopped" once the processes are gone.
func (p *Pool) Halt(ctx context.Context) error { return p.stop(ctx, true) }

// Resume ends Halt. It starts nothing: the next Acquire or Start does.
func (p *Pool) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.halted = false
}

// stop is Stop, and Halt when halt is set.
func (p *Pool) stop(ctx context.Context, halt bool) error {
	p.mu.Lock()
	p.halted = p.halted || halt
	p.stopGen++
	dones := p.stopAllLocked(CauseStop)
	p.broadcastLocked()
	p.mu.Unlock()
	return waitAll(ctx, dones)
}

// Close stops the pool for good: like Stop, then it waits until every
// process has exited and every goroutine the pool started has ended. If ctx
// ends first, the remaining processes are killed at once (SIGKILL) and Close
// still waits for them, then returns ctx.Err(). Calling it again is safe.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.stopGen++
		close(p.closing)
		p.stopAllLocked(CauseShutdown)
		p.broadcastLocked()
	}
	p.mu.Unlock()

	all := make(chan struct{})
	go func() { p.wg.Wait(); close(all) }() // ends with the pool's goroutines; awaited below
	var err error
	select {
	case <-all:
	case <-ctx.Done():
		err = ctx.Err()
		// Every process being stopped has a stopSequence, and so does one
		// whose spawn raced with Close: hurry makes each kill at once.
		p.hurryOnce.Do(func() { close(p.hurry) })
		<-all
	}
	p.client.CloseIdleConnections()
	p.h2c.CloseIdleConnections()
	return err
}

// stopAllLocked moves every process out of the slots and asks each to
// stop, draining ones too; it returns their done channels.
func (p *Pool) stopAllLocked(cause ExitCause) []<-chan struct{} {
	for _, s := range p.slots {
		for _, pr := range []*process{s.cur, s.next} {
			if pr != nil {
				p.retireLocked(pr, cause, false)
			}
		}
		s.cur, s.next = nil, nil
	}
	var dones []<-chan struct{}
	for pr := range p.retiring {
		p.retireLocked(pr, cause, false) // a drain becomes a stop
		dones = append(dones, pr.done)
	}
	return dones
}

func waitAll(ctx context.Context, dones []<-chan struct{}) error {
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Processes returns a snapshot of the live processes.
func (p *Pool) Processes() []ProcessInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ProcessInfo
	add := func(pr *process) {
		if pr == nil || pr.state >= stateExited {
			return
		}
		out = append(out, ProcessInfo{Slot: pr.slot, PID: pr.pid, Port: pr.port, Addr: pr.addr,
			Started: pr.started, Ready: pr.readyAt, State: pr.shownStateLocked().String(),
			Outstanding: pr.outstanding, Requests: pr.requests})
	}
	for _, s := range p.slots {
		add(s.cur)
		add(s.next)
	}
	for pr := range p.retiring {
		add(pr)
	}
	return out
}
