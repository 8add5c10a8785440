package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// cpuSample is how long status measures the processes' CPU use when it
// shows one table: long enough for a busy process to show, short enough
// to wait for.
const cpuSample = 500 * time.Millisecond

// cmdStatus prints what the running gatehouse serves: listeners, apps and
// their processes, as a table or (--json) as the admin API's JSON. With
// --watch it redraws the table every --interval until interrupted.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ctlFlags
	fset := newFlagSet("status", "status [--json] [--watch [--interval D]] [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nShows the listeners, apps and processes of the running gatehouse: each app's\nstate (and why), each process's uptime, CPU, memory and requests.", stderr)
	f.register(fset)
	asJSON := fset.Bool("json", false, "print JSON instead of a table")
	watch := fset.Bool("watch", false, "redraw the table every --interval until interrupted (Ctrl-C)")
	interval := fset.Duration("interval", 2*time.Second, "how often --watch redraws")
	pos, _, err := parseArgs(fset, args)
	if err != nil {
		return flagErr(err)
	}
	if len(pos) != 0 {
		fset.Usage()
		return usageErr("status takes no arguments")
	}
	if *watch && (*asJSON || *interval <= 0) {
		return usageErr("status --watch: not with --json, and --interval must be positive")
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("no admin socket beside %s: gatehouse is not running, or was started with another --admin (or --admin off)", f.pidFile)
	}
	get := func() (*admin.Status, error) {
		ctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		return c.Status(ctx)
	}
	st, err := get()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	pause := cpuSample
	if *watch {
		pause = *interval
	}
	for {
		prev := st
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if st, err = get(); err != nil {
			return err
		}
		if *watch {
			fmt.Fprint(stdout, "\x1b[H\x1b[2J") // home, clear: redraw in place
		}
		writeStatus(stdout, st, prev, time.Now())
		if !*watch {
			return nil
		}
	}
}

// cpuPercent returns each process's CPU use between prev and cur, by pid,
// in percent of one core.
func cpuPercent(cur, prev *admin.Status) map[int]float64 {
	out := map[int]float64{}
	if prev == nil {
		return out
	}
	wall := cur.Time.Sub(prev.Time).Seconds()
	if wall <= 0 {
		return out
	}
	before := map[int]float64{}
	for _, a := range prev.Apps {
		for _, p := range a.Processes {
			before[p.PID] = p.CPUSeconds
		}
	}
	for _, a := range cur.Apps {
		for _, p := range a.Processes {
			if b, ok := before[p.PID]; ok && p.PID != 0 {
				out[p.PID] = max(0, p.CPUSeconds-b) / wall * 100
			}
		}
	}
	return out
}

// formatBytes writes n in binary units: "512K", "87.3M".
func formatBytes(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n < 1<<20:
		return fmt.Sprintf("%dK", n>>10)
	case n < 1<<30:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
}

// writeStatus prints st as tables, times relative to now, CPU use since
// prev (nil: not shown).
func writeStatus(w io.Writer, st, prev *admin.Status, now time.Time) {
	fmt.Fprintf(w, "gatehouse %s, pid %d, up %s\n\n", st.Version, st.PID, roundDur(now.Sub(st.Started)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LISTENER\tSITE\tSCHEME\tHOST\tADDRESS")
	for _, l := range st.Listeners {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Binding, l.Site, l.Scheme, dash(l.Host), dash(l.Address))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tSTATE\tSTARTS\tRESTARTS\tLAST EXIT\tLAST START ERROR")
	for _, a := range st.Apps {
		exit := "-"
		if e := a.LastExit; e != nil {
			exit = fmt.Sprintf("%s %s ago", exitText(e), roundDur(now.Sub(e.Time)))
		}
		startErr := "-"
		if a.LastStartError != "" {
			startErr = firstLine(a.LastStartError)
			if a.LastStartErrorAt != nil {
				startErr += fmt.Sprintf(" (%s ago)", roundDur(now.Sub(*a.LastStartErrorAt)))
			}
		}
		state := a.State
		if state == "stopped" {
			state = "stopped by operator"
		}
		if a.RetryAfterSeconds > 0 {
			state += fmt.Sprintf(" (%ds)", int(a.RetryAfterSeconds+0.5))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", a.Name, state, a.Starts, a.Restarts, exit, startErr)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cpu := cpuPercent(st, prev)
	fmt.Fprintln(tw, "APP\tSLOT\tPID\tPORT\tSTATE\tUPTIME\tCPU\tMEM\tREQUESTS\tIN FLIGHT\tRESTARTS")
	for _, a := range st.Apps {
		for _, p := range a.Processes {
			pct := "-"
			if v, ok := cpu[p.PID]; ok {
				pct = fmt.Sprintf("%.1f%%", v)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", a.Name, p.Slot, p.PID, p.Port, p.State,
				roundDur(time.Duration(p.UptimeSeconds*float64(time.Second))), pct, formatBytes(p.MemoryBytes),
				p.Requests, p.InFlight, a.Restarts)
		}
	}
	tw.Flush()
	if len(st.Directories) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DIRECTORY\tURL\tSTATE\tLOOKUPS\tCACHE HITS\tFAILURES\tLAST ERROR")
	for _, d := range st.Directories {
		state := "up"
		if !d.Up {
			state = "down"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", d.Site, dash(d.URL), state, d.Lookups, d.CacheHits, d.Failures, dash(firstLine(d.LastError)))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// roundDur rounds d for display: whole seconds, or ms below a second.
func roundDur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
