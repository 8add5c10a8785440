package proxy

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadHead reads response heads whole (the rest of the head is taken
// from the reader's buffer at once) and one byte per read (line by line):
// both give the same head and leave what follows it in the reader.
func TestReadHead(t *testing.T) {
	tests := []struct{ name, head, after string }{
		{"CRLF", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: x\r\n\r\n", "hi"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\n", "hi"},
		{"no fields", "HTTP/1.1 204 No Content\r\n\r\n", ""},
		{"no fields, bare LF", "HTTP/1.1 204 No Content\n\n", "HTTP/1.1 200 OK\r\n\r\n"},
		{"CR inside a line", "HTTP/1.1 200 OK\r\nX-A: \r1\r\n\r\n", "x"},
		{"a 1xx head, then the final one", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	}
	for _, tt := range tests {
		for _, way := range []string{"whole", "one byte per read"} {
			t.Run(tt.name+", "+way, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.head + tt.after)
				if way != "whole" {
					r = iotest.OneByteReader(r)
				}
				br := bufio.NewReaderSize(r, connReadSize)
				head, started, err := readHead(br, nil)
				if err != nil || !started || string(head) != tt.head {
					t.Fatalf("readHead = %q, %v, %v; want %q", head, started, err, tt.head)
				}
				rest, err := io.ReadAll(br)
				if err != nil || string(rest) != tt.after {
					t.Errorf("left %q, %v; want %q", rest, err, tt.after)
				}
			})
		}
	}
}

// TestReadHeadIncomplete: a head cut off before its empty line is an
// unexpected EOF, whether it came whole or piece by piece.
func TestReadHeadIncomplete(t *testing.T) {
	for _, s := range []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r", "HTTP/1.1 200 OK\r\n"} {
		for _, one := range []bool{false, true} {
			var r io.Reader = strings.NewReader(s)
			if one {
				r = iotest.OneByteReader(r)
			}
			if _, _, err := readHead(bufio.NewReaderSize(r, connReadSize), nil); err != io.ErrUnexpectedEOF {
				t.Errorf("readHead(%q, one byte per read %v): %v, want io.ErrUnexpectedEOF", s, one, err)
			}
		}
	}
}
