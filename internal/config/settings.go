package config

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteSettings writes the effective settings to w for "gatehouse check", one
// aligned "name  value  (source)" line each: the <aspNetCore> attributes, the
// Gatehouse handlerSettings, other handlerSettings (sorted) and then each
// environment variable as "env NAME". The source is "default", or
// "web.config" when Set names the setting (or "command line" when File is
// empty). Values of variables for which IsSecretName is true are printed as
// "********". It writes to w once and returns that write's error.
func (a *App) WriteSettings(w io.Writer) error {
	src := "web.config"
	if a.File == "" {
		src = "command line"
	}
	// Lay out into memory, where writes cannot fail, then write once.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	line := func(name, value string) {
		s := "default"
		if a.Set[name] {
			s = src
		}
		fmt.Fprintf(tw, "%s\t%s\t(%s)\n", name, quoteIfNeeded(value), s)
	}
	secs := func(d time.Duration) string { return fmtSeconds(d) + "s" }
	b := strconv.FormatBool
	itoa := strconv.Itoa

	fmt.Fprintf(tw, "dir\t%s\n", quoteIfNeeded(a.Dir))
	if a.File != "" {
		fmt.Fprintf(tw, "file\t%s\n", quoteIfNeeded(a.File))
	}
	line("processPath", a.ProcessPath)
	line("arguments", a.Arguments)
	if len(a.Args) > 0 {
		fmt.Fprintf(tw, "  split\t%s\n", strings.Join(quoteAll(a.Args), " "))
	}
	line("startupTimeLimit", secs(a.StartupTimeLimit))
	line("shutdownTimeLimit", secs(a.ShutdownTimeLimit))
	line("rapidFailsPerMinute", itoa(a.RapidFailsPerMinute))
	line("requestTimeout", FormatTimeSpan(a.RequestTimeout))
	line("stdoutLogEnabled", b(a.StdoutLogEnabled))
	line("stdoutLogFile", a.StdoutLogFile)
	line("processesPerApplication", itoa(a.ProcessesPerApplication))
	line("disableStartUpErrorPage", b(a.DisableStartUpErrorPage))
	em := a.ErrorMode
	if em == "" {
		em = ErrorModeDetailedLocalOnly
	}
	line("errorMode", string(em))
	line("forwardWindowsAuthToken", b(a.ForwardWindowsAuthToken))
	hm := a.HostingModel
	if hm == "" {
		hm = "outofprocess"
	}
	line("hostingModel", hm)

	line("forwardResponseConnectionHeader", b(a.ForwardResponseConnectionHeader))
	line("idleTimeout", secs(a.IdleTimeout))
	line("readinessProbe", a.ReadinessProbe)
	line("notifyReady", b(a.NotifyReady))
	line("maxQueuedRequests", itoa(a.MaxQueuedRequests))
	line("retryIdempotentRequests", b(a.RetryIdempotentRequests))
	line("drainTimeout", secs(a.DrainTimeout))
	line("restartMarker", a.RestartMarker)
	line("stdoutLogMaxSize", strconv.FormatInt(a.StdoutLogMaxSize, 10))
	line("stdoutLogMaxFiles", itoa(a.StdoutLogMaxFiles))
	line("socketActivation", b(a.SocketActivation))
	line("startAtBoot", b(a.StartAtBoot))
	se := "auto"
	if a.ShutdownEvent != nil {
		se = b(*a.ShutdownEvent)
	}
	line("shutdownEvent", se)
	line("protocol", a.ProtocolName())
	line("grpcWeb", b(a.GRPCWeb))

	known := map[string]bool{}
	for _, n := range handlerSettingNames {
		known[strings.ToLower(n)] = true
	}
	var other []string
	for k := range a.HandlerSettings {
		if !known[k] {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	for _, k := range other {
		fmt.Fprintf(tw, "handlerSetting %s\t%s\t(%s)\n", k, quoteIfNeeded(a.HandlerSettings[k]), src)
	}
	for _, v := range a.Env {
		val := v.Value
		if IsSecretName(v.Name) {
			val = "********"
		}
		fmt.Fprintf(tw, "env %s\t%s\t(%s)\n", v.Name, quoteIfNeeded(val), src)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// handlerSettingNames are the Gatehouse handlerSettings that map to App fields.
var handlerSettingNames = []string{
	"forwardResponseConnectionHeader", "idleTimeout", "readinessProbe", "notifyReady",
	"maxQueuedRequests", "retryIdempotentRequests", "drainTimeout", "restartMarker",
	"stdoutLogMaxSize", "stdoutLogMaxFiles", "socketActivation", "startAtBoot", "shutdownEvent", "protocol", "grpcWeb",
}

// IsSecretName reports whether an environment variable called name should be
// masked in output: its name contains TOKEN, PASSWORD, SECRET, KEY or
// CONNECTIONSTRING (.NET's ConnectionStrings__X usually holds a password),
// in any case.
func IsSecretName(name string) bool {
	u := strings.ToUpper(name)
	for _, s := range []string{"TOKEN", "PASSWORD", "SECRET", "KEY", "CONNECTIONSTRING"} {
		if strings.Contains(u, s) {
			return true
		}
	}
	return false
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// quoteIfNeeded quotes values that would not read back as written: empty,
// or with spaces at either end or control characters.
func quoteIfNeeded(s string) string {
	if s == "" || strings.TrimSpace(s) != s || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return strconv.Quote(s)
	}
	return s
}
