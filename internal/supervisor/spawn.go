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
	case <-pr.stop:
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
		extra = append(extra, "LISTEN_FDS=1", "LISTEN_FDNAMES=http")
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
		var shimEnv []string
		if cmd, shimEnv, err = shimCommand(p.shell, prog, args); err != nil {
			cleanup()
			return fail("could not find the gatehouse executable for the socket shim", err)
		}
		cmd.ExtraFiles = []*os.File{ln}
		env = append(env, shimEnv...)
	}
	cmd.Dir = spec.Dir
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	if reason, err := p.preparePool(pr, cmd, prog); err != nil {
		cleanup()
		return fail(reason, err)
	}
	out := newOutput(spec, p.log)
	out.attach(cmd)

	select {
	case <-pr.stop: // stopped while the command was prepared
		out.closeWriters()
		out.closeReaders()
		cleanup()
		pr.cg.remove()
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
		pr.cg.remove()
		return fail("could not run the program", err)
	}
	pr.cg.started()

	spec.Keeper.Add(cmd.Process.Pid) // with Setpgid the pid is the group id
	p.mu.Lock()
	pr.sigMu.Lock() // signal reads pid under sigMu only (killAll)
	pr.pid = cmd.Process.Pid
	pr.sigMu.Unlock()
	pr.cmd, pr.port, pr.fixed = cmd, port, fixed
	pr.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	pr.token, pr.command, pr.started = token, command, started
	pr.out, pr.notify = out, nt
	p.starts++
	p.mu.Unlock()

	out.start(&p.wg, p.log.With("pid", pr.pid), pr.pid)
	if nt != nil {
		p.wg.Go(nt.run)
	}
	p.wg.Go(func() { p.awaitExit(pr) })
	p.emit(&pr.spec, Event{Kind: ProcessStarted, Time: started, Slot: pr.slot, PID: pr.pid, Port: port, Command: command})
	return nil
}

// awaitExit is the exit waiter, a helper of the owner: it blocks until the
// child has exited (without reaping it), closes the leases' Exited channel
// at once (the proxy waits only briefly for it before it calls a reset
// connection the app's fault instead of retrying it on a new process) and
// then tells the owner by closing pr.exited.
func (p *Pool) awaitExit(pr *process) {
	pr.waitErr = waitExited(pr.pid)
	p.mu.Lock()
	pr.closeGoneLocked()
	p.mu.Unlock()
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
