package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// handleOrphan leaves an orphan behind: a shell in a new session starts
// "sleep ms/1000" in the background, prints its pid and exits, so the sleep
// loses its parent and is re-parented to the nearest subreaper (Gatehouse)
// or init. The reply is the sleep's pid. ?ms= sets how long it lives
// (default 300).
func handleOrphan(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms <= 0 {
		ms = 300
	}
	cmd := exec.Command("sh", "-c", `sleep "$1" </dev/null >/dev/null 2>&1 & echo $!`, "sh", fmt.Sprintf("%.3f", float64(ms)/1000))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.Output() // waits for the shell; the sleep lives on
	if err != nil {
		http.Error(w, "orphan: "+err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, strings.TrimSpace(string(out)))
}
