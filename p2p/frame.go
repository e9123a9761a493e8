package p2p

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A frame is a minimal unsigned LEB128 varint length followed by that many
// bytes. Lengths are checked against the limit before anything is
// allocated, so a peer cannot make us reserve memory it does not send.

// maxFrameHeader is the longest varint header for a 64-bit length.
const maxFrameHeader = binary.MaxVarintLen64

// appendFrameHeader appends the length header of an n-byte frame.
func appendFrameHeader(dst []byte, n int) []byte {
	return binary.AppendUvarint(dst, uint64(n))
}

// writeFrame writes one frame and flushes w.
func writeFrame(w *bufio.Writer, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var hdr [maxFrameHeader]byte
	if _, err := w.Write(appendFrameHeader(hdr[:0], n)); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return w.Flush()
}

// readFrameLen reads a frame header. It fails with ErrNonMinimalFrame for
// a padded varint and ErrFrameTooLarge for a length over limit; io.EOF
// means the stream ended cleanly before the header.
func readFrameLen(r io.ByteReader, limit int) (int, error) {
	var x uint64
	for i := 0; i < maxFrameHeader; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == maxFrameHeader-1 && b > 1 {
			return 0, fmt.Errorf("%w: length overflows 64 bits", ErrMalformedFrame)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, ErrNonMinimalFrame
			}
			if x > uint64(limit) {
				return 0, fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, x, limit)
			}
			return int(x), nil
		}
	}
	return 0, fmt.Errorf("%w: length overflows 64 bits", ErrMalformedFrame)
}

// readFrame reads one frame of at most limit bytes. It returns the number of
// bytes consumed from r, header included.
func readFrame(r *bufio.Reader, limit int) ([]byte, int, error) {
	return readFrameInto(r, limit, nil)
}

// readFrameInto is readFrame into buf when the frame fits its capacity (a
// new slice otherwise).
func readFrameInto(r *bufio.Reader, limit int, buf []byte) ([]byte, int, error) {
	n, err := readFrameLen(r, limit)
	if err != nil {
		return nil, 0, err
	}
	if cap(buf) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	return buf, len(appendFrameHeader(nil, n)) + n, nil
}
