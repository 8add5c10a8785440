package iis

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// BenchmarkServerDefaults measures the request filtering every app now
// has (IIS's server-level lists and nothing else) on a typical path.
func BenchmarkServerDefaults(b *testing.B) {
	s := NewRequestFiltering(WithServerDefaults(nil))
	for _, path := range []string{"/products/42", "/Content/Site.Min.CSS", "/api/orders/2024/11/details?x=1"} {
		b.Run(path, func(b *testing.B) {
			r := &pipeline.Request{Method: "GET", Path: path, AppPath: "/"}
			b.ReportAllocs()
			for b.Loop() {
				if res := s.Serve(r); res != nil {
					b.Fatal(res.Reason)
				}
			}
		})
	}
}
