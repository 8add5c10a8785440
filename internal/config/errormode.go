package config

// ErrorMode is <httpErrors errorMode>: who sees the details of the pages
// Gatehouse writes in place of the app (the 502.5 startup failure page's
// reason, command, exit status and app output; the 503 rapid-fail page's
// last exit). The zero value is ErrorModeDetailedLocalOnly, IIS's default.
type ErrorMode string

const (
	// ErrorModeDetailedLocalOnly shows details only to requests from the
	// machine itself (a loopback address, or one of the machine's own).
	ErrorModeDetailedLocalOnly ErrorMode = "DetailedLocalOnly"
	// ErrorModeDetailed shows details to every client.
	ErrorModeDetailed ErrorMode = "Detailed"
	// ErrorModeCustom shows details to no client: the pages carry IIS's
	// fixed text only.
	ErrorModeCustom ErrorMode = "Custom"
)

// ShowDetails reports whether a client gets the details, local being
// whether the request came from the machine itself.
func (m ErrorMode) ShowDetails(local bool) bool {
	switch m {
	case ErrorModeDetailed:
		return true
	case ErrorModeCustom:
		return false
	}
	return local
}
