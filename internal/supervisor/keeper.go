package supervisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// keeperEnv marks the gatehouse binary re-executed as the keeper.
const keeperEnv = "GATEHOUSE_KEEPER"

// keeperShell runs the keeper as a shell script where it exists: a shell
// costs ~1 MiB of memory, a second Go runtime ~10 MiB. Where there is none
// (distroless images) the gatehouse binary is re-executed (KeeperMain).
const keeperShell = "/bin/sh"

// keeperScript is runKeeper in POSIX sh: the same commands, the same end.
// g holds the registered groups as " 12 34 ". Numbers start with 1-9, so a
// pgid is never 0 or negative.
const keeperScript = `trap '' INT TERM HUP PIPE
g=' '
while IFS= read -r l || [ -n "$l" ]; do
  set -f; set -- $l; set +f
  case "$1:$2:$#" in
  add:[1-9]*:2|del:[1-9]*:2)
    case "$2" in *[!0-9]*) echo "gatehouse keeper: bad process group in \"$l\"" >&2; continue;; esac
    case "$1:$g" in
    add:*" $2 "*) ;;
    add:*) g="$g$2 " ;;
    del:*" $2 "*) g="${g%% $2 *} ${g#* $2 }" ;;
    esac ;;
  add:*|del:*) echo "gatehouse keeper: bad process group in \"$l\"" >&2 ;;
  :*) ;;
  *) echo "gatehouse keeper: unknown command \"$l\"" >&2 ;;
  esac
done
set -f; set -- $g; set +f
[ $# -eq 0 ] && exit 0
for p; do kill -KILL "-$p" 2>/dev/null; done
echo "gatehouse keeper: gatehouse is gone; killed process groups [$*]" >&2
exit 0
`

const (
	keeperWriteTimeout = time.Second     // one command line to the keeper
	keeperCloseTimeout = 5 * time.Second // Close waits this long for the keeper to exit
)

// Keeper is a watchdog process that kills the app process groups it was told
// about once Gatehouse is gone, however it ended: Pdeathsig only reaches an
// app's direct child, so without the keeper a SIGKILL to Gatehouse would leave
// the app's grandchildren running (ANCM gets this from a Windows job object).
//
// The keeper is a small /bin/sh script (keeperScript), or where there is no
// shell the gatehouse binary re-executed in keeper mode (see KeeperMain).
// It reads "add PGID" and "del PGID" lines from a pipe whose
// write end only this process holds; when the pipe reaches end of file, which
// the kernel makes happen when Gatehouse exits for any reason, it sends
// SIGKILL to every group still registered and exits. It runs in its own
// process group and ignores SIGINT, SIGTERM and SIGHUP, so a Ctrl-C or a
// signal to Gatehouse's group leaves it alive while Gatehouse stops its apps
// gracefully.
//
// A Keeper is owned by whoever created it, which must Close it. The methods
// are safe for concurrent use, and a nil *Keeper does nothing.
type Keeper struct {
	log *slog.Logger
	cmd *exec.Cmd
	// started is closed once the start of the keeper process returned;
	// pid (0 if the start failed) is set before.
	started chan struct{}
	pid     int
	done    chan struct{} // closed once the keeper process is reaped (or never started)

	mu     sync.Mutex // protects w, broken and closed; serializes writes
	w      *os.File   // the write end of the keeper's stdin
	broken bool       // a write failed; the keeper is gone
	closed bool
}

// NewKeeper starts the keeper process (os.Executable in keeper mode). The
// binary's main must call KeeperMain first. log receives the keeper's
// failures; nil means slog.Default(). The keeper itself writes to Gatehouse's
// stderr, only if it had to kill something or got a bad command.
//
// The fork and exec run on a goroutine of the Keeper's, so Gatehouse's
// start-up goes on to bind its listeners meanwhile (~1–2 ms of the path
// from exec to listening). The pipe exists when NewKeeper returns; Add,
// Remove, PID and Close wait for the start to have returned, so no app
// group is registered before a keeper runs. A start that fails is logged,
// and the Keeper then does nothing, as a nil one.
func NewKeeper(log *slog.Logger) (*Keeper, error) {
	return newKeeper(log, os.Stderr, keeperShell)
}

// newKeeper is NewKeeper with the keeper's stderr and shell given; shell ""
// (or one that does not exist) runs the Go keeper.
func newKeeper(log *slog.Logger, stderr *os.File, shell string) (*Keeper, error) {
	if log == nil {
		log = slog.Default()
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start keeper: find the gatehouse executable: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start keeper: %w", err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, keeperEnv+"=") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	// GORACE: a -race build would otherwise sleep a second before exiting.
	env = append(env, keeperEnv+"=1", "GORACE=atexit_sleep_ms=0")
	path, args := exe, []string{"gatehouse-keeper"}
	if shell != "" {
		if _, err := os.Stat(shell); err == nil {
			// The script comes through the environment, so ps shows one short line.
			path, args = shell, []string{"gatehouse-keeper", "-c", `eval "$GATEHOUSE_KEEPER_SCRIPT"`}
			env = append(env, "GATEHOUSE_KEEPER_SCRIPT="+keeperScript)
		}
	}
	cmd := &exec.Cmd{
		Path:   path,
		Args:   args,
		Env:    env,
		Dir:    "/", // pin no folder of the app
		Stdin:  r,
		Stderr: stderr,
		// Its own group: signals to Gatehouse's group do not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	k := &Keeper{log: log, cmd: cmd, started: make(chan struct{}), done: make(chan struct{}), w: w}
	go k.start(r)
	return k, nil
}

// start runs the keeper process, then waits for it (see wait); r is the
// read end of the pipe, the keeper's stdin.
func (k *Keeper) start(r *os.File) {
	err := k.cmd.Start()
	r.Close()
	if err != nil {
		k.mu.Lock()
		k.broken = true
		k.w.Close()
		k.mu.Unlock()
		close(k.started)
		close(k.done)
		k.log.Warn("running without a keeper: if gatehouse is killed, the apps' child processes may outlive it",
			"err", fmt.Errorf("start keeper: %w", err))
		return
	}
	k.pid = k.cmd.Process.Pid
	close(k.started)
	k.log.Debug("keeper started", "pid", k.pid)
	k.wait()
}

// wait reaps the keeper; it ends when the keeper exits, which Close ensures.
func (k *Keeper) wait() {
	err := k.cmd.Wait()
	k.mu.Lock()
	closed := k.closed
	k.mu.Unlock()
	if !closed {
		k.log.Error("keeper exited while Gatehouse runs; app processes are no longer killed if Gatehouse dies",
			"pid", k.pid, "err", err)
	}
	close(k.done)
}

// PID returns the keeper's process id, 0 if it could not be started.
func (k *Keeper) PID() int {
	if k == nil {
		return 0
	}
	<-k.started
	return k.pid
}

// Add registers process group pgid: it is killed if Gatehouse dies before
// Remove(pgid). The caller must hold the group's id reserved (its leader not
// yet reaped) while it calls Add. Failures are logged.
func (k *Keeper) Add(pgid int) { k.send("add", pgid) }

// Remove unregisters process group pgid. Call it once the group is dead, and
// before its leader is reaped, so that the keeper cannot hit a new group that
// reuses the id. Failures are logged.
func (k *Keeper) Remove(pgid int) { k.send("del", pgid) }

// send writes one command line, waiting at most keeperWriteTimeout.
func (k *Keeper) send(verb string, pgid int) {
	if k == nil || pgid <= 0 {
		return
	}
	<-k.started
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || k.broken {
		return
	}
	_ = k.w.SetWriteDeadline(time.Now().Add(keeperWriteTimeout))
	if _, err := fmt.Fprintf(k.w, "%s %d\n", verb, pgid); err != nil {
		k.broken = true
		k.log.Error("cannot reach the keeper; app processes are no longer killed if Gatehouse dies",
			"pid", k.pid, "err", err)
	}
}

// Close stops the keeper: it closes the pipe, so the keeper kills any group
// still registered (normally none) and exits, and waits for that at most 5
// seconds before it kills the keeper. It is idempotent; later calls wait for
// the same exit and return nil.
func (k *Keeper) Close() error {
	if k == nil {
		return nil
	}
	<-k.started
	k.mu.Lock()
	first := !k.closed
	k.closed = true
	if first {
		k.w.Close() // already closed if the start failed: harmless
	}
	k.mu.Unlock()
	if k.pid == 0 { // never started: nothing to wait for
		return nil
	}
	t := time.NewTimer(keeperCloseTimeout)
	defer t.Stop()
	select {
	case <-k.done:
		return nil
	case <-t.C:
	}
	_ = k.cmd.Process.Kill()
	<-k.done
	if first {
		return fmt.Errorf("close keeper: pid %d did not exit within %s; killed it", k.pid, keeperCloseTimeout)
	}
	return nil
}

// closePipe closes the pipe without marking the Keeper closed, as Gatehouse's
// death does; tests use it.
func (k *Keeper) closePipe() {
	<-k.started
	k.mu.Lock()
	defer k.mu.Unlock()
	k.broken = true
	k.w.Close()
}

// KeeperMain must be called at the start of the gatehouse binary's main,
// next to ShimMain. In a normal run it returns false at once. In the keeper
// process (GATEHOUSE_KEEPER=1) it runs the keeper until its stdin reaches end
// of file, kills the groups still registered, and returns true; main must then
// exit with status 0 without doing anything else.
func KeeperMain() bool {
	if os.Getenv(keeperEnv) != "1" {
		return false
	}
	// Group signals from the terminal or to Gatehouse's group must not end
	// the keeper before Gatehouse has stopped its apps. SIGPIPE: a closed
	// stderr must not kill it either.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	runKeeper(os.Stdin, os.Stderr)
	return true
}

// runKeeper reads commands from in until end of file (or a read error, which
// means the same: Gatehouse is gone), then kills every registered group.
func runKeeper(in io.Reader, errOut io.Writer) {
	groups := map[int]struct{}{}
	r := bufio.NewReader(in)
	for {
		line, err := r.ReadString('\n')
		if line = strings.TrimSpace(line); line != "" {
			if verb, arg, ok := strings.Cut(line, " "); ok {
				pgid, perr := strconv.Atoi(arg)
				switch {
				case perr != nil || pgid <= 0:
					fmt.Fprintf(errOut, "gatehouse keeper: bad process group in %q\n", line)
				case verb == "add":
					groups[pgid] = struct{}{}
				case verb == "del":
					delete(groups, pgid)
				default:
					fmt.Fprintf(errOut, "gatehouse keeper: unknown command %q\n", line)
				}
			} else {
				fmt.Fprintf(errOut, "gatehouse keeper: unknown command %q\n", line)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(errOut, "gatehouse keeper: read commands: %v\n", err)
			}
			break
		}
	}
	if len(groups) == 0 {
		return
	}
	list := make([]int, 0, len(groups))
	for pgid := range groups {
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // ESRCH: the group is gone already
		list = append(list, pgid)
	}
	slices.Sort(list)
	fmt.Fprintf(errOut, "gatehouse keeper: gatehouse is gone; killed process groups %v\n", list)
}
