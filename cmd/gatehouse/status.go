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

// cmdStatus prints what the running gatehouse serves: listeners, apps and
// their processes, as a table or (--json) as the admin API's JSON.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f ctlFlags
	fset := newFlagSet("status", "status [--json] [--pid-file FILE | --admin SOCKET | --admin-addr ADDR]\n\nShows the listeners, apps and processes of the running gatehouse.", stderr)
	f.register(fset)
	asJSON := fset.Bool("json", false, "print JSON instead of a table")
	pos, _, err := parseArgs(fset, args)
	if err != nil {
		return flagErr(err)
	}
	if len(pos) != 0 {
		fset.Usage()
		return usageErr("status takes no arguments")
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("no admin socket beside %s: gatehouse is not running, or was started with another --admin (or --admin off)", f.pidFile)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	writeStatus(stdout, st, time.Now())
	return nil
}

// writeStatus prints st as tables, times relative to now.
func writeStatus(w io.Writer, st *admin.Status, now time.Time) {
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
	fmt.Fprintln(tw, "APP\tSLOT\tPID\tPORT\tSTATE\tUPTIME\tREQUESTS\tIN FLIGHT")
	for _, a := range st.Apps {
		for _, p := range a.Processes {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t%d\n", a.Name, p.Slot, p.PID, p.Port, p.State,
				roundDur(time.Duration(p.UptimeSeconds*float64(time.Second))), p.Requests, p.InFlight)
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
