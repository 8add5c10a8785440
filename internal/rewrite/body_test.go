package rewrite_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/rewrite"
)

// bodyBuffer is a pipeline.BodyWriter that keeps what it gets.
type bodyBuffer struct {
	bytes.Buffer
	closed bool
}

func (b *bodyBuffer) Flush() error { return nil }
func (b *bodyBuffer) Close() error { b.closed = true; return nil }

// The body rules of an app moved under /shop, in the shape of IIS's
// "Rewrite links" template, over an HTML page written whole and cut at
// every byte: the same result, only the named tags' URL attributes
// changed, comments and scripts left alone.
func TestHTMLRewriter(t *testing.T) {
	t.Parallel()
	doc := `<configuration><system.webServer><aspNetCore processPath="a" /><rewrite><outboundRules>
<rule name="links" preCondition="IsHTML"><match filterByTags="A, Img, Form" pattern="^/(?!shop/)(.*)" /><action type="Rewrite" value="/shop/{R:1}" /></rule>
<preConditions><preCondition name="IsHTML"><add input="{RESPONSE_CONTENT_TYPE}" pattern="^text/html" /></preCondition></preConditions>
</outboundRules></rewrite></system.webServer></configuration>`
	app, err := webconfig.Decode(strings.NewReader(doc), "web.config", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o, err := rewrite.CompileOutbound(app.Rewrite, rewrite.Options{AppPath: "/"})
	if err != nil {
		t.Fatal(err)
	}
	const page = `<!DOCTYPE html><html><head><link href="/site.css"></head><body>
<A HREF="/cart?x=1&amp;y=2" class=x>cart</A> <a href='/shop/already'>ok</a> <img src=/logo.png alt="a > b">
<!-- <a href="/in-comment"> --><script>if (a<b) document.write('<a href="/in-script">')</script>
<form method="post" action="/login"><a name="top">x</a><a href="https://other.example/">y</a></form></body></html>`
	const want = `<!DOCTYPE html><html><head><link href="/site.css"></head><body>
<A HREF="/shop/cart?x=1&amp;y=2" class=x>cart</A> <a href='/shop/already'>ok</a> <img src="/shop/logo.png" alt="a > b">
<!-- <a href="/in-comment"> --><script>if (a<b) document.write('<a href="/in-script">')</script>
<form method="post" action="/shop/login"><a name="top">x</a><a href="https://other.example/">y</a></form></body></html>`
	h := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
	in := &rewrite.Input{Method: "GET", Path: "/", Header: http.Header{}}
	for _, step := range []int{len(page), 1, 2, 7} {
		rules, err := o.Body(in, 200, pipeline.ResponseHeader(h))
		if err != nil || rules == nil {
			t.Fatalf("Body = %v, %v", rules, err)
		}
		var out bodyBuffer
		w := rewrite.NewHTMLRewriter(&out, rules, slog.New(slog.DiscardHandler))
		for i := 0; i < len(page); i += step {
			if _, err := w.Write([]byte(page[i:min(i+step, len(page))])); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil || !out.closed {
			t.Fatal("not closed", err)
		}
		if out.String() != want {
			t.Errorf("written in pieces of %d:\n%s\nwant\n%s", step, out.String(), want)
		}
	}
	if rules, err := o.Body(in, 200, pipeline.ResponseHeader(http.Header{"Content-Type": {"application/json"}})); rules != nil || err != nil {
		t.Errorf("a JSON response passed the IsHTML precondition: %v, %v", rules, err)
	}
}
