package admin

import "time"

// Status is what `gatehouse status` shows: the Gatehouse process, its
// listeners and every app with its processes. It is the JSON of GET
// /v1/status; fields are only ever added.
type Status struct {
	// Time is when the snapshot was taken (CPU use is measured between two).
	Time      time.Time  `json:"time"`
	PID       int        `json:"pid"`
	Version   string     `json:"version"`
	Started   time.Time  `json:"started"`
	Listeners []Listener `json:"listeners"`
	Apps      []App      `json:"apps"`
	// Directories are the sites' Active Directory connections, by site.
	Directories []Directory `json:"directories,omitempty"`
}

// Directory is a site's Active Directory, which names the Windows groups.
type Directory struct {
	Site string `json:"site"`
	// URL is the one that answered last, "" before any lookup.
	URL string `json:"url,omitempty"`
	// Up is false after a failed lookup, until one succeeds; LastError
	// says why.
	Up        bool   `json:"up"`
	LastError string `json:"last_error,omitempty"`
	// LastOK is when a lookup last succeeded; nil if none has.
	LastOK *time.Time `json:"last_ok,omitempty"`
	// Lookups counts the searches sent, CacheHits the SIDs named from
	// the cache, Failures the lookups that failed.
	Lookups   uint64 `json:"lookups"`
	CacheHits uint64 `json:"cache_hits"`
	Failures  uint64 `json:"failures"`
}

// Listener is one bound socket and the bindings served on it.
type Listener struct {
	// Site and Binding name the configured binding.
	Site    string `json:"site"`
	Binding string `json:"binding"`
	// Scheme is "http" or "https"; Host the host name the binding answers
	// ("" = any).
	Scheme string `json:"scheme"`
	Host   string `json:"host,omitempty"`
	// Address is the bound address, "0.0.0.0:443"; "" before binding.
	Address string `json:"address"`
}

// App is one mounted application.
type App struct {
	// Name is "SITE/PATH", what the control commands take.
	Name string `json:"name"`
	Site string `json:"site"`
	Path string `json:"path"`
	Dir  string `json:"dir"`
	// State is one of:
	//   idle         no process; the next request starts one
	//   starting     a process is starting, none is ready
	//   ready        at least one process serves
	//   recycling    a recycle is under way (new processes start, old ones drain)
	//   draining     processes are stopping
	//   stopped      stopped by the operator (gatehouse stop) until gatehouse start
	//   offline      app_offline.htm is present
	//   backing-off  rapidFailsPerMinute reached: starts refused for RetryAfterSeconds
	//   failed       the last start failed (LastStartError); the next request tries again
	State string `json:"state"`
	// Reason says why the app is in State, in one sentence ("" for ready
	// and starting): the operator's stop, the last start error, the last
	// exit that tripped the rapid-fail limit.
	Reason string `json:"reason,omitempty"`
	// Starts counts processes started; Restarts counts the ones that
	// replaced a crashed process (crashes of ready processes).
	Starts   int `json:"starts"`
	Restarts int `json:"restarts"`
	// LastExit is the last process that ended; nil if none has.
	LastExit *Exit `json:"last_exit,omitempty"`
	// LastStartError is the last failed start's reason and LastStartErrorAt
	// its time.
	LastStartError   string     `json:"last_start_error,omitempty"`
	LastStartErrorAt *time.Time `json:"last_start_error_at,omitempty"`
	// RetryAfterSeconds is how long starts are still refused (backing-off).
	RetryAfterSeconds float64   `json:"retry_after_seconds,omitempty"`
	Processes         []Process `json:"processes"`
}

// Exit is how a process ended.
type Exit struct {
	PID int `json:"pid"`
	// Code is the exit status, -1 when Signal ended it.
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	Cause  string    `json:"cause"`
	Time   time.Time `json:"time"`
}

// Process is one app process.
type Process struct {
	Slot  int    `json:"slot"`
	PID   int    `json:"pid"`
	Port  int    `json:"port"`
	State string `json:"state"`
	// Started is when it was spawned; UptimeSeconds the time since.
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Requests counts requests given to it; InFlight those not finished.
	Requests int `json:"requests"`
	InFlight int `json:"in_flight"`
	// CPUSeconds is the CPU time the process used so far (user and
	// system, its exited children included); MemoryBytes its resident
	// memory. Both 0 when unknown (no /proc).
	CPUSeconds  float64 `json:"cpu_seconds"`
	MemoryBytes int64   `json:"memory_bytes"`
}
