package webconfig

import (
	"errors"
	"strings"
	"testing"
)

// FuzzRewriteSection parses fuzzed <rewrite> and <httpRedirect> content in
// a web.config. It must never panic, and every failure must be an *Error
// (file:line), never a bare error. "go test" runs the seed corpus only.
func FuzzRewriteSection(f *testing.F) {
	for _, s := range []string{
		`<rewrite><rules><rule name="a" stopProcessing="true"><match url="(.*)" /><conditions><add input="{HTTPS}" pattern="off" /></conditions><action type="Redirect" url="https://{HTTP_HOST}/{R:1}" /></rule></rules></rewrite>`,
		`<rewrite><rewriteMaps><rewriteMap name="m"><add key="a" value="b" /></rewriteMap></rewriteMaps><rules><rule name="x"><match url=".*" /><action type="Rewrite" url="{m:{R:0}}" /></rule></rules></rewrite>`,
		`<rewrite><rules><rule name="w" patternSyntax="Wildcard"><match url="*" /><serverVariables><set name="HTTP_X" value="{R:1}" /></serverVariables><action type="CustomResponse" statusCode="403" /></rule></rules><outboundRules /></rewrite>`,
		`<httpRedirect enabled="true" destination="/x$S$Q" exactDestination="true"><add wildcard="*.php" destination="/" /></httpRedirect>`,
		`<rewrite><rules configSource="../x" /></rewrite>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, inner string) {
		doc := `<configuration><system.webServer><aspNetCore processPath="a" />` + inner + `</system.webServer></configuration>`
		_, err := decode(strings.NewReader(doc), "web.config", t.TempDir(), nil)
		if err == nil {
			return
		}
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		for _, e := range errs {
			if _, ok := errors.AsType[*Error](e); !ok {
				t.Errorf("error %T %q is not a *webconfig.Error", e, e)
			}
		}
	})
}
