package siteconfig

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// didYouMean returns ` (did you mean "X"?)` for the name in known closest
// to s, or "" when none is close: at most a third of its letters differ,
// or one starts with the other ("hostname", "host"). Case does not count.
func didYouMean(s string, known []string) string {
	best, bestDist := "", len(s)/3+1
	for _, k := range known {
		ls, lk := strings.ToLower(s), strings.ToLower(k)
		d := config.EditDistance(ls, lk)
		if len(lk) >= 3 && len(ls) >= 3 && (strings.HasPrefix(ls, lk) || strings.HasPrefix(lk, ls)) {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return ` (did you mean "` + best + `"?)`
}
