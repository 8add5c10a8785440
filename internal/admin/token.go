package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// TokenMode is the token file's mode: Gatehouse's user and group may read
// it (put operators in Gatehouse's group, as for the admin socket), nobody
// else.
const TokenMode fs.FileMode = 0o640

// tokenBytes is the token's length in random bytes (hex-encoded in the file).
const tokenBytes = 32

// TokenPath returns the token file that goes with the admin socket at
// socket: beside it, with the extension ".token" (gatehouse.sock →
// gatehouse.token). "" for no socket.
func TokenPath(socket string) string {
	if socket == "" || socket == "off" {
		return ""
	}
	return strings.TrimSuffix(socket, filepath.Ext(socket)) + ".token"
}

// EnsureToken returns the token in the file at path, creating the file
// with a new random token (mode TokenMode, in a folder created 0750) when
// there is none. An existing file is kept, so a Gatehouse started by an
// upgrade answers to the token its clients already read; it is refused if
// others than its owner and group may read or write it.
func EnsureToken(path string) (string, error) {
	if tok, err := ReadToken(path); err == nil {
		st, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("admin token %s: %w", path, err)
		}
		if st.Mode().Perm()&0o007 != 0 {
			return "", fmt.Errorf("admin token %s: mode %v lets every user read it; make it %v or remove it", path, st.Mode().Perm(), TokenMode)
		}
		return tok, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", fmt.Errorf("admin token %s: %w", path, err)
	}
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	tok := hex.EncodeToString(b)
	// Written under a temporary name and renamed, so a reader never sees a
	// partial token and the file never has a looser mode.
	f, err := os.CreateTemp(filepath.Dir(path), ".gatehouse-token-")
	if err != nil {
		return "", fmt.Errorf("admin token %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // after the rename: nothing to remove
	if err := f.Chmod(TokenMode); err != nil {
		f.Close()
		return "", fmt.Errorf("admin token %s: %w", path, err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("admin token %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("admin token %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("admin token %s: %w", path, err)
	}
	return tok, nil
}

// ReadToken reads the token in the file at path.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token %s: the file is empty", path)
	}
	return tok, nil
}

// openPaths are the read-only endpoints a TCP admin address serves without
// the token: liveness, readiness and metrics, for probes and scrapers.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// guard wraps the API for a TCP address, which every local process (an app
// running as its pool user too) and every browser on the machine can reach:
// the request must name a loopback host (no DNS rebinding), must not come
// from a page of another origin (a form POST), and, except for openPaths,
// must carry "Authorization: Bearer <token>".
func guard(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeJSON(w, http.StatusForbidden, replyBody{Error: fmt.Sprintf("host %q is not a loopback name", r.Host), Kind: KindForbidden})
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !loopbackOrigin(o) {
			writeJSON(w, http.StatusForbidden, replyBody{Error: fmt.Sprintf("requests from origin %q are refused", o), Kind: KindForbidden})
			return
		}
		if !openPaths[r.URL.Path] {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse admin"`)
				writeJSON(w, http.StatusUnauthorized, replyBody{Error: "the admin token is missing or wrong (it is in the token file beside the admin socket)", Kind: KindUnauthorized})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether host ("name[:port]") names the loopback
// interface: localhost or a loopback IP address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// loopbackOrigin reports whether an Origin header names a page served
// from a loopback host over http or https.
func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && loopbackHost(u.Host)
}
