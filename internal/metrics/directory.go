package metrics

import "github.com/prometheus/client_golang/prometheus"

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

// WatchDirectories registers gatehouse_directory_up and the
// gatehouse_directory_{lookups,cache_hits,failures}_total counters, read
// from dirs at each scrape. Call it once.
func (m *Metrics) WatchDirectories(reg *prometheus.Registry, dirs func() []Directory) {
	reg.MustRegister(&directoryCollector{dirs: dirs})
}

var (
	dirUpDesc = prometheus.NewDesc("gatehouse_directory_up",
		"1 while the site's directory answers lookups, 0 after a failed one.", []string{"site"}, nil)
	dirLookupsDesc = prometheus.NewDesc("gatehouse_directory_lookups_total",
		"Group name lookups sent to the site's directory.", []string{"site"}, nil)
	dirHitsDesc = prometheus.NewDesc("gatehouse_directory_cache_hits_total",
		"Group SIDs named from the cache without asking the directory.", []string{"site"}, nil)
	dirFailuresDesc = prometheus.NewDesc("gatehouse_directory_failures_total",
		"Lookups the site's directory did not answer (logins went on with SIDs).", []string{"site"}, nil)
)

type directoryCollector struct{ dirs func() []Directory }

func (c *directoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dirUpDesc
	ch <- dirLookupsDesc
	ch <- dirHitsDesc
	ch <- dirFailuresDesc
}

func (c *directoryCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.dirs() {
		up := 0.0
		if d.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(dirUpDesc, prometheus.GaugeValue, up, d.Site)
		ch <- prometheus.MustNewConstMetric(dirLookupsDesc, prometheus.CounterValue, float64(d.Lookups), d.Site)
		ch <- prometheus.MustNewConstMetric(dirHitsDesc, prometheus.CounterValue, float64(d.CacheHits), d.Site)
		ch <- prometheus.MustNewConstMetric(dirFailuresDesc, prometheus.CounterValue, float64(d.Failures), d.Site)
	}
}
