package webconfig

import (
	"encoding/xml"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// httpErrorsAttrs are the attributes of <httpErrors> in IIS's schema.
// Only errorMode is carried out: it decides who sees the details of the
// pages Gatehouse writes for the app (502.5, 503). The app's own error
// responses pass through unchanged whatever the others say.
var httpErrorsAttrs = []string{
	"errorMode", "existingResponse", "defaultResponseMode", "defaultPath",
	"detailedMoreInformationLink", "allowAbsolutePathsWhenDelegated",
}

// errorModes are the values of errorMode, by lower-cased spelling (IIS
// reads enumeration values without regard to case).
var errorModes = map[string]config.ErrorMode{
	"detailedlocalonly": config.ErrorModeDetailedLocalOnly,
	"detailed":          config.ErrorModeDetailed,
	"custom":            config.ErrorModeCustom,
}

// httpErrors reads <system.webServer><httpErrors> whose start tag is t. Its
// children (<error>, <remove>, <clear>: IIS's custom error pages) are not
// carried out and are skipped.
func (p *parser) httpErrors(t token, se xml.StartElement) error {
	attrs, err := p.attrs(t, se, httpErrorsAttrs...)
	if err != nil {
		return err
	}
	if at, ok := attrs["errorMode"]; ok {
		line := p.attrLine(t, "errorMode")
		mode, ok := errorModes[strings.ToLower(strings.TrimSpace(at.Value))]
		if !ok {
			return p.errorf(line, "httpErrors", "errorMode", "unknown error mode %q (known: DetailedLocalOnly, Detailed, Custom)", at.Value)
		}
		p.app.ErrorMode = mode
		p.app.Set["errorMode"] = true
	}
	return p.skip()
}
