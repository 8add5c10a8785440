package rewrite_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// BenchmarkEvaluate runs a typical published rule set (HTTPS redirect,
// canonical host, an API passthrough, an SPA fallback) over a request that
// passes every rule and one that the fallback rewrites. Run it briefly
// (-benchtime 1s) and compare ratios from one run.
func BenchmarkEvaluate(b *testing.B) {
	set := rules(
		rule("https", `stopProcessing="true"`, `<match url="(.*)" /><conditions><add input="{HTTPS}" pattern="off" /></conditions><action type="Redirect" url="https://{HTTP_HOST}/{R:1}" />`),
		rule("canon", `stopProcessing="true"`, `<match url="(.*)" /><conditions><add input="{HTTP_HOST}" pattern="^example\.com$" /></conditions><action type="Redirect" url="https://www.example.com/{R:1}" />`),
		rule("api", `stopProcessing="true"`, `<match url="^api/" /><action type="None" />`),
		rule("spa", `stopProcessing="true"`, `<match url=".*" /><conditions><add input="{REQUEST_FILENAME}" matchType="IsFile" negate="true" /><add input="{REQUEST_FILENAME}" matchType="IsDirectory" negate="true" /></conditions><action type="Rewrite" url="/index.html" />`),
	)
	for _, bc := range []struct{ name, target string }{{"api passthrough", "/api/orders/42?x=1"}, {"spa rewrite", "/orders/42?x=1"}} {
		b.Run(bc.name, func(b *testing.B) {
			rs := compile(b, set, rewrite.Options{Dir: b.TempDir()})
			in := request(bc.target)
			in.HTTPS, in.Host = true, "www.example.com"
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rs.Evaluate(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
