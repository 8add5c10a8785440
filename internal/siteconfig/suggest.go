package siteconfig

import "strings"

// didYouMean returns ` (did you mean "X"?)` for the name in known closest
// to s, or "" when none is close: at most a third of its letters differ,
// or one starts with the other ("hostname", "host"). Case does not count.
func didYouMean(s string, known []string) string {
	best, bestDist := "", len(s)/3+1
	for _, k := range known {
		ls, lk := strings.ToLower(s), strings.ToLower(k)
		d := editDistance(ls, lk)
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

// editDistance is the Levenshtein distance of a and b, by bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
