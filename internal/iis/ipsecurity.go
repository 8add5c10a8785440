package iis

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// IPSecurity is <ipSecurity>: it allows or denies a request by the client's
// address (pipeline.Request.ClientIP, which believes X-Forwarded-For only
// from the site's trusted proxies). The first rule whose prefix holds the
// address decides; without one, AllowUnlisted does.
type IPSecurity struct {
	cfg    config.IPSecurity
	refuse pipeline.Result
}

// NewIPSecurity returns the stage for cfg, nil when cfg is nil or allows
// every address.
func NewIPSecurity(cfg *config.IPSecurity) *IPSecurity {
	if cfg == nil || cfg.AllowUnlisted && !anyDenied(cfg.Rules) {
		return nil
	}
	s := &IPSecurity{cfg: *cfg}
	s.refuse = pipeline.Result{Stage: "ipSecurity"}
	switch cfg.DenyAction {
	case "Unauthorized":
		s.refuse.Status, s.refuse.Substatus = http.StatusUnauthorized, 503
	case "NotFound":
		s.refuse.Status, s.refuse.Substatus = http.StatusNotFound, 503
	case "AbortRequest":
		s.refuse.Abort = true
	default: // Forbidden
		s.refuse.Status, s.refuse.Substatus = http.StatusForbidden, 6
	}
	return s
}

func anyDenied(rules []config.IPRule) bool {
	for _, r := range rules {
		if !r.Allowed {
			return true
		}
	}
	return false
}

// Serve refuses r when its client address is denied.
func (s *IPSecurity) Serve(r *pipeline.Request) *pipeline.Result {
	ip := r.ClientIP
	allowed := s.cfg.AllowUnlisted
	for _, rule := range s.cfg.Rules {
		if ip.IsValid() && rule.Prefix.Contains(ip) {
			allowed = rule.Allowed
			break
		}
	}
	if allowed {
		return nil
	}
	res := s.refuse
	res.Reason = "client " + ip.String() + " denied by ipSecurity"
	return &res
}
