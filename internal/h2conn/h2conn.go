// Package h2conn holds the connection mechanics that Gatehouse's two
// HTTP/2 ends share: the server of the front door (internal/h2srv) and
// the h2c client to apps (internal/proxy). Both run on x/net/http2's
// Framer and hpack with one read loop per connection and frame writes
// under a write lock; this package has what they do alike on that design:
// the protocol's limits and the Framer's set-up, the connection error and
// its GOAWAY code, the peer's SETTINGS as they bear on sending, the
// overflow check of the send windows, the accounting of the receive
// windows, the writing of header blocks and WINDOW_UPDATEs, and the
// handling of field names. What differs by role (the streams' state
// machines, which end may send what) stays with each end.
//
// Nothing here locks. Each type is guarded by its owner's locks, as its
// doc says: the connection's mutex for the windows and settings, the
// write lock for the Framer and the HPACK encoder. The name tables are
// read only once built.
package h2conn

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	// MaxWindow is the largest flow-control window (RFC 9113 §6.9.1).
	MaxWindow = 1<<31 - 1
	// MaxStreamID is the largest stream id (RFC 9113 §5.1.1).
	MaxStreamID = 1<<31 - 1
	// InitialWindow is HTTP/2's initial flow-control window, of a
	// connection and of a stream until SETTINGS change it.
	InitialWindow = 65535
	// DefaultMaxFrameSize is HTTP/2's initial SETTINGS_MAX_FRAME_SIZE.
	DefaultMaxFrameSize = 16384
	// DefaultHeaderTableSize is HTTP/2's initial
	// SETTINGS_HEADER_TABLE_SIZE.
	DefaultHeaderTableSize = 4096
	// ReadBuffer is the size of the buffer a connection's frames are read
	// through: the Framer reads a frame's header and its payload with two
	// reads, and through the buffer a burst of frames costs one read
	// system call.
	ReadBuffer = 32 << 10
)

// NewFramer returns the Framer of a connection that writes frames to w
// and reads them from r (a buffer of ReadBuffer bytes over the
// connection). A frame it reads is valid until the next read. It
// assembles HEADERS and their CONTINUATIONs into MetaHeadersFrames,
// Truncated beyond maxHeaderList bytes of fields (the header list size
// of SETTINGS_MAX_HEADER_LIST_SIZE); a frame larger than maxReadFrame is
// a connection error (FRAME_SIZE_ERROR).
func NewFramer(w io.Writer, r io.Reader, maxReadFrame, maxHeaderList uint32) *http2.Framer {
	fr := http2.NewFramer(w, r)
	fr.SetReuseFrames()
	fr.SetMaxReadFrameSize(maxReadFrame)
	fr.ReadMetaHeaders = hpack.NewDecoder(DefaultHeaderTableSize, nil)
	fr.MaxHeaderListSize = maxHeaderList
	return fr
}

// ConnectionSpecific reports whether the lower-case field name is one of
// the connection-specific fields that make an HTTP/2 message malformed
// (RFC 9113 §8.2.2). TE, which a request may have with "trailers" alone,
// is left to the caller.
func ConnectionSpecific(name string) bool {
	switch name {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// ConnError is a connection error found in what the peer sent (RFC 9113
// §5.4.1): the connection ends, and the peer is told Code in a GOAWAY.
type ConnError struct {
	Code http2.ErrCode
	Msg  string
}

func (e *ConnError) Error() string { return e.Msg + " (" + e.Code.String() + ")" }

// Errorf returns a *ConnError of code with a message from format.
func Errorf(code http2.ErrCode, format string, args ...any) error {
	return &ConnError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// GoAwayCode returns the code of the GOAWAY that tells the peer of err,
// when err is a connection error found in what the peer sent: a
// *ConnError, or one the Framer returned while reading. ok is false for
// any other failure (the connection cut, a timeout), of which the peer is
// told nothing.
func GoAwayCode(err error) (code http2.ErrCode, ok bool) {
	var ce *ConnError
	var fe http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		return ce.Code, true
	case errors.As(err, &fe):
		return http2.ErrCode(fe), true
	case errors.Is(err, http2.ErrFrameTooLarge):
		return http2.ErrCodeFrameSize, true
	}
	return 0, false
}

// AddWindow adds inc to the send window *w, unless that would take it
// past MaxWindow (false), which is a flow-control error (RFC 9113
// §6.9.1): of the connection for its window and for a change of
// SETTINGS_INITIAL_WINDOW_SIZE (§6.9.2), of the stream for a stream's
// WINDOW_UPDATE.
func AddWindow(w *int64, inc int64) bool {
	if *w+inc > MaxWindow {
		return false
	}
	*w += inc
	return true
}

// Peer is what the peer's SETTINGS say about sending to it. It is guarded
// by the connection's mutex; SyncTable needs the write lock as well.
type Peer struct {
	MaxFrame uint32 // SETTINGS_MAX_FRAME_SIZE: the largest frame to send
	InitWin  int64  // SETTINGS_INITIAL_WINDOW_SIZE: a new stream's send window
	// tableSize is SETTINGS_HEADER_TABLE_SIZE, to apply to the encoder
	// before the next header block (newTable).
	tableSize uint32
	newTable  bool
}

// NewPeer returns the settings a peer has until its SETTINGS arrive.
func NewPeer() Peer {
	return Peer{MaxFrame: DefaultMaxFrameSize, InitWin: InitialWindow, tableSize: DefaultHeaderTableSize}
}

// Apply checks one of the peer's settings against the protocol's bounds
// (a *ConnError when it is out of them) and applies it if it is one of
// those that bear on sending. delta is the change to make to the send
// window of every open stream, at once, for a new
// SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 §6.9.2; with AddWindow). The
// caller applies the settings in the order they came, and those of its
// role.
func (p *Peer) Apply(s http2.Setting) (delta int64, err error) {
	if err := s.Valid(); err != nil {
		return 0, err
	}
	switch s.ID {
	case http2.SettingMaxFrameSize:
		p.MaxFrame = s.Val
	case http2.SettingInitialWindowSize:
		delta = int64(s.Val) - p.InitWin
		p.InitWin = int64(s.Val)
	case http2.SettingHeaderTableSize:
		p.tableSize, p.newTable = s.Val, true
	}
	return delta, nil
}

// SyncTable applies the peer's SETTINGS_HEADER_TABLE_SIZE to enc, the
// encoder of the header blocks sent to it, before a header block. Called
// with the write lock and the connection's mutex held.
func (p *Peer) SyncTable(enc *hpack.Encoder) {
	if p.newTable {
		enc.SetMaxDynamicTableSizeLimit(p.tableSize)
		p.newTable = false
	}
}

// WriteHeaderBlock writes the header block b of stream id as a HEADERS
// frame and as many CONTINUATION frames as it needs, each at most
// maxFrame bytes. Called with the write lock held.
func WriteHeaderBlock(fr *http2.Framer, id uint32, b []byte, endStream bool, maxFrame int) error {
	first := true
	for first || len(b) > 0 {
		n := min(len(b), maxFrame)
		frag, end := b[:n], n == len(b)
		b = b[n:]
		var err error
		if first {
			err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag,
				EndStream: endStream, EndHeaders: end})
			first = false
		} else {
			err = fr.WriteContinuation(id, end, frag)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// WriteWindowUpdates gives the peer back room: conn bytes of the
// connection's window and stream bytes of stream id's, each in a
// WINDOW_UPDATE when it is not 0. Called with the write lock held.
func WriteWindowUpdates(fr *http2.Framer, id uint32, conn, stream int64) error {
	if conn > 0 {
		if err := fr.WriteWindowUpdate(0, uint32(conn)); err != nil {
			return err
		}
	}
	if stream > 0 {
		return fr.WriteWindowUpdate(id, uint32(stream))
	}
	return nil
}
