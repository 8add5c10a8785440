package metrics

// Directory is one site's Active Directory lookups, for the directory
// metrics.
type Directory struct {
	Site string
	// Up is false after a failed lookup, until one succeeds.
	Up bool
	// Lookups counts the searches sent to the directory, CacheHits the
	// SIDs named from the cache, Failures the lookups that failed.
	Lookups, CacheHits, Failures uint64
}

// WatchDirectories adds gatehouse_directory_up and the
// gatehouse_directory_{lookups,cache_hits,failures}_total counters, read
// from dirs at each scrape.
func (m *Metrics) WatchDirectories(dirs func() []Directory) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dirs = dirs
}

// directoryFamilies are the sites' directory figures.
func directoryFamilies(dirs []Directory) []family {
	up := newGaugeFamily("gatehouse_directory_up",
		"1 while the site's directory answers lookups, 0 after a failed one.", "gauge")
	lookups := newGaugeFamily("gatehouse_directory_lookups_total",
		"Group name lookups sent to the site's directory.", "counter")
	hits := newGaugeFamily("gatehouse_directory_cache_hits_total",
		"Group SIDs named from the cache without asking the directory.", "counter")
	failures := newGaugeFamily("gatehouse_directory_failures_total",
		"Lookups the site's directory did not answer (logins went on with SIDs).", "counter")
	for _, d := range dirs {
		v := 0.0
		if d.Up {
			v = 1
		}
		up.add(v, "site", d.Site)
		lookups.add(float64(d.Lookups), "site", d.Site)
		hits.add(float64(d.CacheHits), "site", d.Site)
		failures.add(float64(d.Failures), "site", d.Site)
	}
	return []family{up.family, lookups.family, hits.family, failures.family}
}
