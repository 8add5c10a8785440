package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/logtest"
)

// TestMain doubles as the helper app: with GH_HELPER set, the test binary
// runs one of the helper modes below instead of the tests (as os/exec's
// tests do), and through ShimMain and KeeperMain it is its own
// socket-activation shim and keeper.
func TestMain(m *testing.M) {
	if ShimMain() {
		os.Exit(127)
	}
	if KeeperMain() {
		os.Exit(0)
	}
	if mode := os.Getenv("GH_HELPER"); mode != "" {
		runHelper(mode)
		os.Exit(0)
	}
	// execwait=2: os/exec panics if a started Cmd is collected without Wait.
	os.Setenv("GODEBUG", strings.TrimPrefix(os.Getenv("GODEBUG")+",execwait=2", ","))
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if kids := liveChildren(); len(kids) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: child processes left behind: %v\n", kids)
			code = 1
		}
		os.Exit(code)
	}))
}

// liveChildren lists processes whose parent is the test binary.
func liveChildren() []int {
	me := os.Getpid()
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st := procStat(pid); st.ppid == me {
			out = append(out, pid)
		}
	}
	return out
}

type stat struct {
	state byte
	ppid  int
}

func procStat(pid int) stat {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+4 > len(s) {
		return stat{}
	}
	f := strings.Fields(s[i+2:])
	ppid, _ := strconv.Atoi(f[1])
	return stat{state: f[0][0], ppid: ppid}
}

// processGone reports whether pid has exited: no such process, or a zombie
// not ours (an orphaned grandchild waiting for init to reap it).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	st := procStat(pid)
	return st.state == 0 || ((st.state == 'Z' || st.state == 'X') && st.ppid != os.Getpid())
}

// ---- helper app ----

type echoReply struct {
	PID        int               `json:"pid"`
	Token      string            `json:"token"`
	GotToken   string            `json:"got_token"`
	Env        map[string]string `json:"env"`
	Grandchild int               `json:"grandchild,omitempty"`
}

func runHelper(mode string) {
	if dir := os.Getenv("GH_PIDDIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, strconv.Itoa(os.Getpid())), []byte(mode), 0o644)
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	switch mode {
	case "exit":
		fmt.Println("out-marker: starting")
		fmt.Fprintln(os.Stderr, "err-marker: cannot start")
		os.Exit(atoi("GH_CODE"))
	case "never":
		fmt.Println("never listening")
		select {}
	case "sleep":
		signal.Ignore(syscall.SIGTERM)
		select {}
	case "slow":
		time.Sleep(time.Duration(atoi("GH_DELAY_MS")) * time.Millisecond)
	case "flood":
		w := bufio.NewWriterSize(os.Stdout, 64<<10)
		line := strings.Repeat("x", 99) + "\n"
		for n := 0; n < atoi("GH_BYTES"); n += len(line) {
			w.WriteString(line)
		}
		w.Flush()
	case "interleave": // a stdout line finished after a whole stderr line, then exit 1
		os.Stdout.WriteString("partial ")
		os.Stderr.WriteString("ERR line\n")
		// The test makes GH_GO once the stderr line was read.
		for {
			if _, err := os.Stat(os.Getenv("GH_GO")); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		os.Stdout.WriteString("rest\n")
		os.Exit(1)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "once": // serves the first time, fails every later start
		if _, err := os.Stat(os.Getenv("GH_FILE")); err == nil {
			fmt.Fprintln(os.Stderr, "started before; failing")
			os.Exit(3)
		}
		os.WriteFile(os.Getenv("GH_FILE"), nil, 0o644)
	}
	serveHelper(mode)
}

func serveHelper(mode string) {
	var ln net.Listener
	var err error
	if os.Getenv("LISTEN_FDS") == "1" {
		ln, err = net.FileListener(os.NewFile(3, "listen"))
	} else {
		ln, err = net.Listen("tcp4", "127.0.0.1:"+os.Getenv("ASPNETCORE_PORT"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	fmt.Println("listening on", ln.Addr())

	var grandchild int
	if mode == "grandchild" || mode == "escape" {
		exe, _ := os.Executable()
		c := exec.Command(exe)
		c.Env = append(os.Environ(), "GH_HELPER=sleep")
		if mode == "escape" {
			// Leaves the process group but keeps the output pipe open.
			c.Stdout = os.Stdout
			c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "grandchild:", err)
			os.Exit(2)
		}
		grandchild = c.Process.Pid
	}
	var mu sync.Mutex
	requests := 0
	exit := make(chan int, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		env := map[string]string{}
		for _, k := range []string{"ASPNETCORE_PORT", "HTTP_PLATFORM_PORT", "PORT", "ASPNETCORE_TOKEN",
			"ASPNETCORE_APPL_PATH", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "GATEHOUSE_LISTEN_SHIM", "GH_TAG", "NOTIFY_SOCKET"} {
			if v, ok := os.LookupEnv(k); ok {
				env[k] = v
			}
		}
		if d := r.URL.Query().Get("hold_ms"); d != "" {
			n, _ := strconv.Atoi(d)
			time.Sleep(time.Duration(n) * time.Millisecond)
		}
		json.NewEncoder(w).Encode(echoReply{PID: os.Getpid(), Token: os.Getenv("ASPNETCORE_TOKEN"),
			GotToken: r.Header.Get("MS-ASPNETCORE-TOKEN"), Env: env, Grandchild: grandchild})
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		if mode == "crash-after" && n >= max(1, atoiEnv("GH_N")) {
			w.(http.Flusher).Flush()
			select {
			case exit <- 1:
			default:
			}
		}
	})
	registerPoolHandlers(mux) // apppool_test.go
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(os.Getenv("GH_FILE")); err != nil {
			os.WriteFile(os.Getenv("GH_FILE")+".probed", nil, 0o644)
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/iisintegration", func(w http.ResponseWriter, r *http.Request) {
		if mode == "ignore-term" || mode == "term-only" || r.Method != http.MethodPost ||
			!strings.EqualFold(r.Header.Get("MS-ASPNETCORE-EVENT"), "shutdown") ||
			r.Header.Get("MS-ASPNETCORE-TOKEN") != os.Getenv("ASPNETCORE_TOKEN") {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
		fmt.Println("got shutdown event")
		select {
		case exit <- 0:
		default:
		}
	})
	if mode == "notify" {
		go func() {
			for {
				if _, err := os.Stat(os.Getenv("GH_FILE")); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
			if err == nil {
				c.Write([]byte("STATUS=ok\nREADY=1\n"))
				c.Close()
			}
		}()
	}
	if mode != "ignore-term" {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() { <-sig; fmt.Println("got SIGTERM"); exit <- 0 }()
	}
	srv := &http.Server{Handler: mux}
	if os.Getenv("GH_H2C") == "1" { // speak only HTTP/2 with prior knowledge
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	go srv.Serve(ln)
	code := <-exit
	time.Sleep(20 * time.Millisecond) // let the last response leave
	os.Exit(code)
}

func atoiEnv(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }

// ---- test fixtures ----

type fixture struct {
	t      *testing.T
	pool   *Pool
	log    *logtest.Recorder
	pidDir string
}

// helperSpec returns a Spec that runs this test binary in helper mode.
func helperSpec(t *testing.T, mode string, env ...string) Spec {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GH_") && !strings.HasPrefix(kv, "ASPNETCORE_") && !strings.HasPrefix(kv, "GORACE=") {
			base = append(base, kv)
		}
	}
	// GORACE: a -race helper would otherwise sleep 1 s in exit.
	base = append(base, "GH_HELPER="+mode, "GH_PIDDIR="+t.TempDir(), "GORACE=atexit_sleep_ms=0")
	return Spec{
		Name:                t.Name(),
		Path:                exe,
		Dir:                 t.TempDir(),
		Env:                 append(base, env...),
		ApplPath:            "/",
		ShutdownEvent:       true,
		Processes:           1,
		StartupTimeout:      5 * time.Second,
		ShutdownTimeout:     3 * time.Second,
		RapidFailsPerMinute: 10,
		MaxQueued:           1000,
	}
}

func pidDirOf(spec Spec) string {
	v, _ := strings.CutPrefix(spec.Env[slices.IndexFunc(spec.Env, func(s string) bool {
		return strings.HasPrefix(s, "GH_PIDDIR=")
	})], "GH_PIDDIR=")
	return v
}

// newFixture starts a pool and registers its Close plus a check that every
// helper process it ran (grandchildren too) is gone.
func newFixture(t *testing.T, spec Spec, opts ...poolOption) *fixture {
	t.Helper()
	rec := logtest.New()
	f := &fixture{t: t, pool: newPool(spec, slog.New(rec), opts...), log: rec, pidDir: pidDirOf(spec)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := f.pool.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, pid := range f.helperPIDs() {
			if !waitFor(2*time.Second, func() bool { return processGone(pid) }) {
				t.Errorf("helper process %d still alive after Close", pid)
			}
		}
		if t.Failed() {
			rec.Dump(t)
		}
	})
	return f
}

func (f *fixture) helperPIDs() []int {
	ents, _ := os.ReadDir(f.pidDir)
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// get sends one request to the lease's process and decodes the echo reply.
func get(t *testing.T, addr, token, query string) (echoReply, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/"+query, nil)
	req.Header.Set("MS-ASPNETCORE-TOKEN", token)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return echoReply{}, err
	}
	defer resp.Body.Close()
	var r echoReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("decode reply (status %d): %w", resp.StatusCode, err)
	}
	return r, nil
}
