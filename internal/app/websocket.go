package app

import (
	"net/http"
	"strings"
)

// stripUpgrade removes the Upgrade header and the "upgrade" token of
// Connection, so that the request reaches the app as a plain request
// (<webSocket enabled="false"/>).
func stripUpgrade(h http.Header) {
	h.Del("Upgrade")
	vals := h.Values("Connection")
	if len(vals) == 0 {
		return
	}
	var keep []string
	for _, v := range vals {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !strings.EqualFold(tok, "upgrade") {
				keep = append(keep, tok)
			}
		}
	}
	h.Del("Connection")
	if len(keep) > 0 {
		h.Set("Connection", strings.Join(keep, ", "))
	}
}
