package iis

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// MaxTrackedClients bounds the client addresses a DynamicIPSecurity counts
// requests for in one interval. Past it, requests from addresses not yet
// seen in the interval are not counted until the next one: a flood from
// many addresses costs bounded memory (a few MB), and each address it
// uses still gets no more than its limit in the intervals it is counted.
const MaxTrackedClients = 1 << 16

// DynamicIPSecurity is <dynamicIpSecurity>: it denies a client (by
// pipeline.Request.ClientIP, which believes X-Forwarded-For only from the
// site's trusted proxies) that has more than MaxConcurrentRequests
// requests in progress (sub-status 501), or starts more than MaxRequests
// in one RequestInterval (sub-status 502). Intervals are aligned for all
// clients: the counts start again at each interval's start.
//
// It is an inbound stage, an end observer and an observer: Serve counts a
// request in, RequestEnded (or RequestDone, after a panic) counts it out.
// Its counts are its own, so a web.config reload, which builds a new
// stage, starts them again.
type DynamicIPSecurity struct {
	cfg    config.DynamicIPSecurity
	refuse pipeline.Result
	log    *slog.Logger
	now    func() time.Time

	mu sync.Mutex // protects the fields below
	// window is the start of the current interval; rates counts the
	// requests each client started in it (at most MaxTrackedClients).
	window time.Time
	rates  map[netip.Addr]int
	// inFlight counts each client's requests in progress; clients with none
	// have no entry. requests maps each request in progress that was
	// counted to its client, so RequestDone counts out only those.
	inFlight map[netip.Addr]int
	requests map[*pipeline.Request]netip.Addr
}

// NewDynamicIPSecurity returns the stage for cfg, nil when cfg is nil or
// enables no limit. log receives the denials of logging-only mode; nil
// means slog.Default().
func NewDynamicIPSecurity(cfg *config.DynamicIPSecurity, log *slog.Logger) *DynamicIPSecurity {
	if cfg == nil || cfg.MaxConcurrentRequests <= 0 && (cfg.MaxRequests <= 0 || cfg.RequestInterval <= 0) {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	s := &DynamicIPSecurity{cfg: *cfg, log: log, now: time.Now,
		rates: map[netip.Addr]int{}, inFlight: map[netip.Addr]int{}, requests: map[*pipeline.Request]netip.Addr{}}
	s.refuse = pipeline.Result{Stage: "dynamicIpSecurity"}
	switch cfg.DenyAction {
	case "Unauthorized":
		s.refuse.Status = http.StatusUnauthorized
	case "NotFound":
		s.refuse.Status = http.StatusNotFound
	case "AbortRequest":
		s.refuse.Abort = true
	default: // Forbidden
		s.refuse.Status = http.StatusForbidden
	}
	return s
}

// Serve denies r when its client is over a limit, and counts it otherwise.
func (s *DynamicIPSecurity) Serve(r *pipeline.Request) *pipeline.Result {
	ip := r.ClientIP
	if !ip.IsValid() {
		return nil
	}
	ip = ip.Unmap()
	s.mu.Lock()
	// A Request is reused once finished: an entry still there is a request
	// whose end another application observed (a rewrite into it).
	if old, ok := s.requests[r]; ok {
		s.countOut(r, old)
	}
	sub, why := s.over(ip)
	if sub == 0 || s.cfg.LoggingOnly {
		s.countIn(r, ip)
	}
	s.mu.Unlock()
	if sub == 0 {
		return nil
	}
	if s.cfg.LoggingOnly {
		s.log.Info("request over a dynamicIpSecurity limit (logging only: served)", "client", ip, "limit", why, "path", r.Path)
		return nil
	}
	res := s.refuse
	res.Substatus = sub
	res.Reason = "client " + ip.String() + " over dynamicIpSecurity " + why
	return &res
}

// over returns the sub-status and limit ip is over, 0 when none; it counts
// the request in the current interval. s.mu is held.
func (s *DynamicIPSecurity) over(ip netip.Addr) (int, string) {
	if n := s.cfg.MaxConcurrentRequests; n > 0 && s.inFlight[ip] >= n {
		return 501, "maxConcurrentRequests " + strconv.Itoa(n)
	}
	if n := s.cfg.MaxRequests; n > 0 && s.cfg.RequestInterval > 0 {
		now := s.now()
		if now.Sub(s.window) >= s.cfg.RequestInterval || now.Before(s.window) {
			s.window = now.Truncate(s.cfg.RequestInterval)
			if len(s.rates) > 1024 {
				s.rates = map[netip.Addr]int{} // let go of a flood's buckets
			} else {
				clear(s.rates)
			}
		}
		c, seen := s.rates[ip]
		if !seen && len(s.rates) >= MaxTrackedClients {
			return 0, ""
		}
		s.rates[ip] = c + 1
		if c+1 > n {
			return 502, "maxRequests " + strconv.Itoa(n) + " per " + s.cfg.RequestInterval.String()
		}
	}
	return 0, ""
}

// countIn records r as in progress for ip. s.mu is held.
func (s *DynamicIPSecurity) countIn(r *pipeline.Request, ip netip.Addr) {
	if s.cfg.MaxConcurrentRequests <= 0 {
		return
	}
	s.requests[r] = ip
	s.inFlight[ip]++
}

// countOut ends r's count for ip. s.mu is held.
func (s *DynamicIPSecurity) countOut(r *pipeline.Request, ip netip.Addr) {
	delete(s.requests, r)
	if n := s.inFlight[ip] - 1; n > 0 {
		s.inFlight[ip] = n
	} else {
		delete(s.inFlight, ip)
	}
}

// RequestEnded counts a request out once its answer is written, before
// its end is sent (as a pipeline.EndObserver): a client that waited for
// its answer before it sends the next request is never over
// MaxConcurrentRequests for it.
func (s *DynamicIPSecurity) RequestEnded(r *pipeline.Request) {
	if s.cfg.MaxConcurrentRequests <= 0 || r == nil {
		return
	}
	s.mu.Lock()
	if ip, ok := s.requests[r]; ok {
		s.countOut(r, ip)
	}
	s.mu.Unlock()
}

// RequestDone counts a finished request out, if RequestEnded did not (a
// request that ended in a panic).
func (s *DynamicIPSecurity) RequestDone(d *pipeline.Done) { s.RequestEnded(d.Request) }

// tracked returns how many clients s holds state for (tests).
func (s *DynamicIPSecurity) tracked() (rates, inFlight, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rates), len(s.inFlight), len(s.requests)
}
