package frontend

import (
	"net/http"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/gatehouse/gatehouse/internal/pages"
)

// Per-connection bounds of the multiplexed protocols (HTTP/2, HTTP/3):
// how many requests one connection may have open at once and how much
// request data it may have buffered, so that the memory one connection
// holds has a bound whatever its client sends.
const (
	// maxStreamsPerConn is SETTINGS_MAX_CONCURRENT_STREAMS (HTTP/2) and
	// the QUIC bidirectional stream limit (HTTP/3): nginx's
	// http2_max_concurrent_streams is 128, Go's default 250.
	maxStreamsPerConn = 100
	// maxReadFrameSize is the largest HTTP/2 frame read: the protocol's
	// initial 16 KiB, so one connection's read buffer stays that small
	// (Go's default accepts 1 MiB frames).
	maxReadFrameSize = 16 << 10
	// streamWindow and connWindow are the flow-control windows: the
	// request data a stream, and all streams of a connection, may have
	// buffered before the client must wait.
	streamWindow = 256 << 10
	connWindow   = 1 << 20
)

// http2Config is the HTTP/2 server's configuration (see the bounds above).
// send is the send timeout (Timeouts.Send, 0 for none): a connection whose
// writes make no progress for that long is closed, with its streams.
func http2Config(send time.Duration) *http.HTTP2Config {
	return &http.HTTP2Config{
		WriteByteTimeout:              send,
		MaxConcurrentStreams:          maxStreamsPerConn,
		MaxReadFrameSize:              maxReadFrameSize,
		MaxReceiveBufferPerConnection: connWindow,
		MaxReceiveBufferPerStream:     streamWindow,
	}
}

// quicConfig is the HTTP/3 server's QUIC configuration (see the bounds
// above). 0-RTT stays on, as with quic-go's default for HTTP/3.
func quicConfig() *quic.Config {
	return &quic.Config{
		Allow0RTT:                      true,
		MaxIncomingStreams:             maxStreamsPerConn,
		InitialStreamReceiveWindow:     64 << 10,
		MaxStreamReceiveWindow:         streamWindow,
		InitialConnectionReceiveWindow: 256 << 10,
		MaxConnectionReceiveWindow:     connWindow,
	}
}

// enterStream admits a request of the net/http servers. A request of a
// multiplexed connection (HTTP/2, HTTP/3) counts against maxConnections
// as a request in flight over all such connections: beyond it, it is
// answered 503.2 at once and ok is false. Otherwise it returns the writer
// and request to serve it with (tunnelIdle's, for a tunnel) and the
// tunnel's stop, which leaveStream takes when the request is done.
func (s *Server) enterStream(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, func(), bool) {
	if r.ProtoMajor < 2 {
		return w, r, nil, true
	}
	n := s.streams.Add(1)
	if m := s.conns.max.Load(); m > 0 && n > m {
		s.streams.Add(-1)
		s.log.Debug("request refused: too many HTTP/2 and HTTP/3 requests in flight", "remote", r.RemoteAddr, "limit", m)
		pages.Status(w, http.StatusServiceUnavailable, 2, "")
		return nil, nil, nil, false
	}
	w, r, stop := s.tunnelIdle(w, r)
	return w, r, stop, true
}

// leaveStream ends a request enterStream admitted: r is the request it
// returned, stop the tunnel's stop, st the request's state if serve may
// not have counted it out of the requests in flight (leaveStreams), nil
// once it was given back. (Not a closure from enterStream: that would
// cost an allocation per request.)
func (s *Server) leaveStream(r *http.Request, stop func(), st *reqState) {
	if r.ProtoMajor < 2 {
		return
	}
	stop()
	if st != nil {
		st.leaveStreams(s)
	}
}
