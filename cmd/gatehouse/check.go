package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/config/webconfig"
	"github.com/gatehouse/gatehouse/internal/iis"
	"github.com/gatehouse/gatehouse/internal/siteconfig"
)

// cmdCheck validates a web.config (given as the file or its folder) or a site
// configuration (a .yaml/.yml file) and prints the effective settings.
func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "check DIR | check FILE\n\nValidates DIR/web.config (or a web.config FILE, or a site config .yaml FILE),\nprints the effective settings and exits 3 if the file is invalid.", stderr)
	pos, _, err := parseArgs(fs, args)
	if err != nil {
		return flagErr(err)
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageErr("check takes one folder or file")
	}
	target := pos[0]
	if ext := strings.ToLower(filepath.Ext(target)); ext == ".yaml" || ext == ".yml" {
		cfg, err := siteconfig.Load(target)
		if err != nil {
			return configErr(err)
		}
		// Everything is checked before anything is printed.
		final := stdout
		var buf bytes.Buffer
		stdout := &buf
		if cfg.GlobalRules != "" {
			rw, unsupported, _, err := loadGlobalRules(cfg.GlobalRules)
			if err != nil {
				return configErr(err)
			}
			fmt.Fprintf(stdout, "global rules: %s (%d rules, %d maps)\n", cfg.GlobalRules, len(rw.Rules), len(rw.Maps))
			for _, u := range unsupported {
				fmt.Fprintf(stdout, "not supported: %s\n", u)
			}
		}
		if cfg.ACMEEnabled() {
			var names []string
			for _, site := range cfg.Sites {
				for _, b := range site.Bindings {
					if b.Certificate == siteconfig.CertificateAuto {
						names = append(names, b.Host)
					}
				}
			}
			a := cfg.ACME
			fmt.Fprintf(stdout, "automatic HTTPS: %s from %s (challenges %s), stored in %s\n",
				strings.Join(names, ", "), a.Directory, strings.Join(a.Challenges, ", "), a.Storage)
		}
		for _, site := range cfg.Sites {
			for _, b := range site.Bindings {
				fmt.Fprintf(stdout, "binding %s: %s://%s host %s", b.Name, b.Scheme, b.ListenAddr(), cmp.Or(b.Host, "*"))
				switch {
				case b.Certificate == siteconfig.CertificateAuto:
					fmt.Fprintf(stdout, " certificate auto")
				case b.CertificateFile != "":
					fmt.Fprintf(stdout, " certificate %s", b.CertificateFile)
				}
				fmt.Fprintln(stdout)
			}
			for _, a := range site.Applications {
				if err := checkWebConfig(filepath.Join(a.Dir, "web.config"), !cfg.RequestFiltering.DisableServerDefaults, cfg.Upstreams(), stdout); err != nil {
					return err
				}
				if err := checkAuth(site, filepath.Join(a.Dir, "web.config"), stdout); err != nil {
					return configErr(fmt.Errorf("%s:%d: application %q: %w", cfg.File, a.Line, a.Path, err))
				}
				desc, err := describePool(a.Pool)
				if err != nil {
					return configErr(fmt.Errorf("%s:%d: application %q: %w", cfg.File, a.Line, a.Path, err))
				}
				if desc != "" {
					fmt.Fprintf(stdout, "application pool %s%s: %s\n", site.Name, a.Path, desc)
				}
				if a.Protocol != "" {
					fmt.Fprintf(stdout, "application protocol %s%s: %s (unless web.config sets protocol)\n", site.Name, a.Path, a.Protocol)
				}
			}
			if err := checkDirectory(site, stdout); err != nil {
				return configErr(fmt.Errorf("%s:%d: %w", cfg.File, site.Line, err))
			}
		}
		fmt.Fprintf(stdout, "%s: OK\n", target)
		_, err = buf.WriteTo(final)
		return err
	}
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		target = filepath.Join(target, "web.config")
	}
	// As "serve DIR" serves it: a site with the default settings.
	var buf bytes.Buffer
	if err := checkWebConfig(target, true, nil, &buf); err != nil {
		return err
	}
	if err := checkAuth(siteconfig.Site{}, target, &buf); err != nil {
		return configErr(fmt.Errorf("%s: %w", target, err))
	}
	_, err = buf.WriteTo(stdout)
	return err
}

// checkWebConfig validates file and looks its program up, and only then,
// when everything holds, prints the settings: "OK" is never followed by a
// failure. serverDefaults says whether the app gets IIS's server-level
// request-filtering lists; upstreams are the other servers its rewrite rules
// may send requests to (proxyUpstreams).
func checkWebConfig(file string, serverDefaults bool, upstreams []string, stdout io.Writer) error {
	cfg, err := webconfig.Load(file)
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil {
		err = app.CheckRules(cfg, upstreams)
	}
	if err != nil {
		return configErr(err)
	}
	prog, err := programOf(cfg)
	if err != nil {
		return configErr(fmt.Errorf("%s: %w", file, err))
	}
	fmt.Fprintf(stdout, "%s: OK\n", file)
	if err := cfg.WriteSettings(stdout); err != nil {
		return err
	}
	for _, s := range cfg.Sections {
		fmt.Fprintf(stdout, "section: %s\n", s)
	}
	for _, u := range cfg.Unsupported {
		fmt.Fprintf(stdout, "not supported: %s\n", u)
	}
	for _, a := range config.WindowsPaths(cfg.Args) {
		fmt.Fprintf(stdout, "warning: %s: %s\n", file, windowsPathWarning(a))
	}
	writeRewriteNotes(stdout, cfg.Rewrite)
	writeFilterLists(stdout, cfg.RequestFiltering, serverDefaults)
	fmt.Fprintf(stdout, "program: %s\n", prog)
	return nil
}

// windowsPathWarning says what is wrong with arg, a Windows absolute path
// in the arguments attribute.
func windowsPathWarning(arg string) string {
	return fmt.Sprintf("arguments: \"%s\" is a Windows absolute path, which does not exist here; write it relative to the app folder (.\\%s)",
		arg, arg[max(strings.LastIndexAny(arg, `\/`), 0)+1:])
}

// writeRewriteNotes says how Gatehouse reads what Windows-minded rules
// write: a '\' in the path of a Rewrite or Redirect URL is a '/', as IIS
// reads it (the Blazor WebAssembly publish template's "wwwroot\{R:0}").
func writeRewriteNotes(w io.Writer, rw *config.Rewrite) {
	if rw == nil {
		return
	}
	for _, r := range rw.Rules {
		u := r.Action.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		if (r.Action.Type == "Rewrite" || r.Action.Type == "Redirect") && strings.Contains(u, `\`) {
			fmt.Fprintf(w, "note: %s:%d: rule %q: url %q: '\\' is read as '/', as IIS reads it\n", r.File, r.Line, r.Name, r.Action.URL)
		}
	}
}

// writeFilterLists prints the hidden segments and file extensions the app
// is filtered with: IIS's server-level lists as its web.config edits them
// (serverDefaults), or its web.config's own.
func writeFilterLists(w io.Writer, rf *config.RequestFiltering, serverDefaults bool) {
	from := "web.config only: server defaults off"
	if serverDefaults {
		rf = iis.WithServerDefaults(rf)
		from = "IIS server defaults with the web.config's edits"
	}
	hidden, denied, allowed := iis.Lists(rf)
	list := func(l []string) string {
		if len(l) == 0 {
			return "none"
		}
		return strings.Join(l, " ")
	}
	fmt.Fprintf(w, "request filtering (%s):\n", from)
	fmt.Fprintf(w, "  hidden segments (404.8): %s\n", list(hidden))
	fmt.Fprintf(w, "  denied file extensions (404.7): %s\n", list(denied))
	if len(allowed) > 0 {
		fmt.Fprintf(w, "  allowed file extensions: %s\n", list(allowed))
	}
	if rf != nil && !rf.FileExtensions.AllowUnlisted {
		fmt.Fprintln(w, "  unlisted file extensions denied (404.7)")
	}
}

// programOf looks the app's program up the way a start will, so that a
// missing runtime shows before the first request rather than as a 502.5.
// %VAR% that only exist at start (the port) are filled with placeholders.
func programOf(cfg *config.App) (string, error) {
	if err := config.LauncherPlaceholders(cfg.ProcessPath, cfg.Arguments); err != nil {
		return "", err
	}
	env := config.BuildEnv(os.Environ(), cfg, "/", 0)
	env = append(env, "ASPNETCORE_PORT=0", "HTTP_PLATFORM_PORT=0", "PORT=0", "ASPNETCORE_TOKEN=x")
	lookup := config.EnvLookup(env)
	path, _ := lookup("PATH")
	return config.ResolveProgram(cfg.Dir, config.Expand(cfg.ProcessPath, lookup), path)
}

// checkAuth loads what the app's authentication needs (keytab, user and
// group files) as serving it would, and says which schemes are on at its
// root.
func checkAuth(site siteconfig.Site, file string, stdout io.Writer) error {
	cfg, err := webconfig.Load(file)
	if err != nil {
		return err
	}
	set := authSettings(site.Authentication, nil, nil)
	pol := auth.NewPolicy(set.Schemes, cfg.Security)
	if pol.Trivial() {
		return nil
	}
	windows, basic := pol.Uses()
	if err := auth.NewProvider(set, slog.New(slog.DiscardHandler)).Require(windows, basic); err != nil {
		return err
	}
	cfg.SiteSchemes = set.Schemes
	fmt.Fprintf(stdout, "authentication %s: %s at the root", file, cfg.RootSchemes(set.Schemes).HTTPAuth())
	if windows {
		fmt.Fprintf(stdout, "; keytab %s", auth.KeytabPath(set.Keytab))
	}
	if basic {
		fmt.Fprintf(stdout, "; users %s", set.UserFile)
	}
	fmt.Fprintln(stdout)
	return nil
}

// checkDirectory connects to a site's directory as a login would and says
// what it found. A directory that does not answer is reported, not an
// error: logins go on without it (the groups stay SIDs).
func checkDirectory(site siteconfig.Site, stdout io.Writer) error {
	if site.Authentication.Directory.IsZero() {
		return nil
	}
	dir, err := newDirectory(site.Authentication, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("site %q: authentication.%w", site.Name, err)
	}
	found, err := dir.Check(context.Background())
	if err != nil {
		fmt.Fprintf(stdout, "directory of site %s: cannot connect (logins work, Windows groups stay SIDs): %v\n", site.Name, err)
		return nil
	}
	fmt.Fprintf(stdout, "directory of site %s: %s\n", site.Name, found)
	return nil
}
