package h2srv

import (
	"sync"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2conn"
)

// frameHeaderLen is the length of an HTTP/2 frame header.
const frameHeaderLen = 9

// dataBuffers holds the buffers DATA frames up to the default frame size
// are written from. The Framer would write them from a buffer of its own,
// which it keeps, as large as the largest frame it wrote, for the
// connection's life: 16 KiB more for every connection that ever sent a
// response body that long.
var dataBuffers = sync.Pool{New: func() any { return new([frameHeaderLen + h2conn.DefaultMaxFrameSize]byte) }}

// writeData writes a DATA frame of stream id carrying data, with
// END_STREAM when end is set, in one write to the connection; a frame
// larger than the default frame size (a client that allowed larger ones)
// is written as its header and then its data. Called with the write lock
// held.
func (c *Conn) writeData(id uint32, end bool, data []byte) error {
	var flags http2.Flags
	if end {
		flags = http2.FlagDataEndStream
	}
	n := len(data)
	b := dataBuffers.Get().(*[frameHeaderLen + h2conn.DefaultMaxFrameSize]byte)
	defer dataBuffers.Put(b)
	*(*[frameHeaderLen]byte)(b[:]) = [frameHeaderLen]byte{byte(n >> 16), byte(n >> 8), byte(n),
		byte(http2.FrameData), byte(flags), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
	if n > h2conn.DefaultMaxFrameSize {
		if _, err := c.nc.Write(b[:frameHeaderLen]); err != nil {
			return err
		}
		_, err := c.nc.Write(data)
		return err
	}
	copy(b[frameHeaderLen:], data)
	_, err := c.nc.Write(b[:frameHeaderLen+n])
	return err
}
