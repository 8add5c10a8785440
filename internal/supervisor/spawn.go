package supervisor

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// launch is a process start prepared and not yet run: the command and
// what it holds open. Whatever it holds is released by close if the start
// does not happen, and handed over to the process if it does.
type launch struct {
	cmd     *exec.Cmd
	command string // as logged and shown on the error page
	port    int
	fixed   bool // port came from ASPNETCORE_PORT
	token   string
	ln      *os.File // socket activation: the bound socket, until the child has it
	notify  *notifier
	out     *output
	cg      *cgroup
}

// close releases everything l holds; for a start that did not happen.
func (l *launch) close() {
	if l.ln != nil {
		l.ln.Close()
	}
	if l.notify != nil {
		l.notify.close()
	}
	if l.out != nil {
		l.out.closeWriters()
		l.out.closeReaders()
	}
	l.cg.remove()
}

// spawn prepares pr's launch and starts it.
func (p *Pool) spawn(pr *process) error {
	l, err := p.prepareLaunch(pr)
	if err != nil {
		return err
	}
	return p.startLaunch(pr, l)
}

// prepareLaunch chooses the port and token, and builds the command for pr
// with its environment, output pipes, notify socket, cgroup and identity.
// On failure nothing is left open.
func (p *Pool) prepareLaunch(pr *process) (_ *launch, err error) {
	spec := pr.spec
	written := strings.TrimSpace(strings.Join(append([]string{spec.Path}, spec.Args...), " "))
	fail := func(reason string, err error) error {
		return &upstream.StartError{Command: written, Reason: reason, ExitCode: -1, Err: err}
	}
	l := &launch{}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.port, l.fixed, err = portFromEnv(spec.Env); err != nil {
		return nil, fail("invalid ASPNETCORE_PORT", err)
	}
	if l.fixed {
		if err := p.awaitPortHolders(pr, l.port); err != nil {
			return nil, err
		}
	}
	var extra []string
	switch {
	case spec.SocketActivation:
		if l.ln, l.port, err = bindLoopback(l.port); err != nil {
			return nil, fail("could not bind the app socket", err)
		}
		extra = append(extra, "LISTEN_FDS=1", "LISTEN_FDNAMES=http")
	case !l.fixed:
		if l.port, err = p.pickPort(); err != nil {
			return nil, fail("could not choose a port", err)
		}
	}
	if l.token = tokenFromEnv(spec.Env); l.token == "" {
		if l.token, err = newToken(); err != nil {
			return nil, fail("could not make a pairing token", err)
		}
	}
	if spec.NotifyReady {
		if l.notify, err = newNotifier(); err != nil {
			return nil, fail("could not create the notify socket", err)
		}
		extra = append(extra, "NOTIFY_SOCKET="+l.notify.path)
	}
	env := childEnv(spec.Env, l.port, l.token, extra)

	lookup := config.EnvLookup(env)
	pathEnv, _ := lookup("PATH")
	prog, err := config.ResolveProgram(spec.Dir, config.Expand(spec.Path, lookup), pathEnv)
	if err != nil {
		return nil, fail("program not found", err)
	}
	args := make([]string, len(spec.Args))
	for i, a := range spec.Args {
		args[i] = config.Expand(a, lookup)
	}
	l.command = commandLine(prog, args)

	l.cmd = exec.Command(prog, args...)
	if spec.SocketActivation {
		var shimEnv []string
		if l.cmd, shimEnv, err = shimCommand(p.shell, prog, args); err != nil {
			return nil, fail("could not find the gatehouse executable for the socket shim", err)
		}
		l.cmd.ExtraFiles = []*os.File{l.ln}
		env = append(env, shimEnv...)
	}
	l.cmd.Dir = spec.Dir
	l.cmd.Env = env
	l.cmd.SysProcAttr = sysProcAttr()
	var reason string
	if l.cg, reason, err = p.preparePool(spec, l.cmd, prog); err != nil {
		return nil, fail(reason, err)
	}
	l.out = newOutput(spec, p.log)
	l.out.attach(l.cmd)
	return l, nil
}

// startLaunch runs l as pr, unless the pool asked to retire pr meanwhile,
// then starts pr's helpers: the output readers, the notify socket and the
// exit waiter.
func (p *Pool) startLaunch(pr *process, l *launch) error {
	select {
	case <-pr.stop:
		l.close()
		return errCanceled
	default:
	}
	started := time.Now()
	err := l.cmd.Start()
	l.out.closeWriters() // the child has its copies
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	if err != nil {
		l.close()
		return &upstream.StartError{Command: l.command, Reason: "could not run the program", ExitCode: -1, Err: err}
	}
	l.cg.started()
	pid := l.cmd.Process.Pid
	pr.spec.Keeper.Add(pid) // with Setpgid the pid is the group id

	p.mu.Lock()
	pr.cmd, pr.pid, pr.port, pr.fixed = l.cmd, pid, l.port, l.fixed
	pr.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port))
	pr.token, pr.command, pr.started = l.token, l.command, started
	pr.out, pr.notify, pr.cg = l.out, l.notify, l.cg
	p.starts++
	p.mu.Unlock()

	pr.out.start(&p.wg, p.log.With("pid", pid), pid)
	if pr.notify != nil {
		p.wg.Go(pr.notify.run)
	}
	p.wg.Go(func() { p.awaitExit(pr) })
	p.emit(&pr.spec, Event{Kind: ProcessStarted, Time: started, Slot: pr.slot, PID: pid, Port: l.port, Command: l.command})
	return nil
}

// awaitExit is the exit waiter, a helper of the owner: it blocks until the
// child has exited (without reaping it) and tells the owner by closing
// pr.exited. The owner waits on it wherever it waits, so it marks the
// process exited and closes the leases' Exited channel at once (the proxy
// waits only briefly for that before it calls a reset connection the app's
// fault instead of retrying it on a new process), and reaps it after.
func (p *Pool) awaitExit(pr *process) {
	pr.waitErr = waitExited(pr.pid)
	close(pr.exited)
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
		case <-pr.stop:
			return errCanceled
		}
	}
	return nil
}
