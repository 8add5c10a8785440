package iis

import (
	"fmt"
	"io"
	"log/slog"
	"mime"
	"os"
	"path"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// maxErrorPage is the largest File page sent; a larger file is not read
// and the response keeps its own body.
const maxErrorPage = 1 << 20

// HTTPErrors is IIS's custom error module (<httpErrors>): it picks the
// page that replaces an error response. Which responses it replaces is
// existingResponse's: Auto replaces the front door's own answers (its
// refusals, 502.3, 503) but not the app's, which ANCM marks with
// fTrySkipCustomErrors, nor ANCM's 502.5 and app_offline pages; Replace
// replaces those too; PassThrough replaces nothing. Clients that errorMode
// shows details to (every client for Detailed, those on the machine for
// DetailedLocalOnly) get the responses as they are, as on IIS.
type HTTPErrors struct {
	replace bool
	pages   []config.ErrorPage
	def     *config.ErrorPage
	dir     string
	// local, for DetailedLocalOnly, tells a client on the machine; nil
	// when errorMode is Custom.
	local func(*pipeline.Request) bool
	log   *slog.Logger
}

// NewHTTPErrors returns the custom error pages of he for the app in dir
// whose errorMode is mode; local tells whether a request comes from the
// machine. It returns nil when no response would ever be replaced.
func NewHTTPErrors(he *config.HTTPErrors, mode config.ErrorMode, dir string, local func(*pipeline.Request) bool, log *slog.Logger) *HTTPErrors {
	if he == nil || he.ExistingResponse == "PassThrough" || mode == config.ErrorModeDetailed {
		return nil
	}
	e := &HTTPErrors{replace: he.ExistingResponse == "Replace", pages: he.Pages, dir: dir, log: log}
	if he.Default.Path != "" {
		e.def = &he.Default
	}
	if len(e.pages) == 0 && e.def == nil && !e.replace {
		return nil
	}
	if mode != config.ErrorModeCustom {
		e.local = local
	}
	return e
}

// Page implements pipeline.ErrorPages.
func (e *HTTPErrors) Page(r *pipeline.Request, status, substatus int, skip bool) *pipeline.ErrorPage {
	if status < 400 || skip && !e.replace || e.local != nil && e.local(r) {
		return nil
	}
	pg := e.find(status, substatus)
	if pg == nil {
		if skip {
			return &pipeline.ErrorPage{Standard: true} // the app's body is replaced by the front door's page
		}
		return nil
	}
	switch pg.Mode {
	case "Redirect":
		return &pipeline.ErrorPage{Location: pg.Path}
	case "ExecuteURL":
		return &pipeline.ErrorPage{ExecuteURL: pg.Path}
	}
	body, err := readErrorPage(e.dir, pg.Path)
	if err != nil {
		e.log.Warn("custom error page not sent", "status", status, "path", pg.Path, "err", err)
		if skip {
			return &pipeline.ErrorPage{Standard: true}
		}
		return nil
	}
	ct := mime.TypeByExtension(path.Ext(pg.Path))
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &pipeline.ErrorPage{Body: body, ContentType: ct}
}

// find returns the page for status.substatus: the <error> for that
// sub-status, else the one for any sub-status, else the default page; nil
// for none.
func (e *HTTPErrors) find(status, substatus int) *config.ErrorPage {
	var anySub *config.ErrorPage
	for i := range e.pages {
		pg := &e.pages[i]
		if pg.Status != status {
			continue
		}
		if pg.Substatus == substatus {
			return pg
		}
		if pg.Substatus < 0 && anySub == nil {
			anySub = pg
		}
	}
	if anySub != nil {
		return anySub
	}
	return e.def
}

// readErrorPage reads the file rel of the app's folder dir. It is opened
// within dir (os.OpenInRoot), so neither ".." nor a symbolic link can lead
// out of the folder.
func readErrorPage(dir, rel string) ([]byte, error) {
	f, err := os.OpenInRoot(dir, rel)
	if err != nil {
		return nil, fmt.Errorf("open custom error page: %w", err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxErrorPage+1))
	if err != nil {
		return nil, fmt.Errorf("read custom error page %s: %w", rel, err)
	}
	if len(body) > maxErrorPage {
		return nil, fmt.Errorf("custom error page %s is larger than %d bytes", rel, maxErrorPage)
	}
	return body, nil
}
