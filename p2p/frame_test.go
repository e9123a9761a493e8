package p2p

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestReadFrameLen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []byte
		limit int
		want  int
		err   error
	}{
		{"zero", []byte{0}, 10, 0, nil},
		{"one byte", []byte{5}, 10, 5, nil},
		{"two bytes", []byte{0x80, 0x01}, 200, 128, nil},
		{"at limit", []byte{0x80, 0x01}, 128, 128, nil},
		{"over limit", []byte{0x81, 0x01}, 128, 0, ErrFrameTooLarge},
		{"padded zero", []byte{0x80, 0x00}, 10, 0, ErrNonMinimalFrame},
		{"padded five", []byte{0x85, 0x80, 0x00}, 10, 0, ErrNonMinimalFrame},
		{"1 GiB", appendFrameHeader(nil, 1<<30), 8 << 20, 0, ErrFrameTooLarge},
		{"overflow", bytes.Repeat([]byte{0xff}, 10), 10, 0, ErrMalformedFrame},
		{"empty", nil, 10, 0, io.EOF},
		{"truncated", []byte{0x80}, 10, 0, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readFrameLen(bytes.NewReader(tc.in), tc.limit)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got error %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	for _, p := range [][]byte{nil, []byte("a"), bytes.Repeat([]byte{7}, 300)} {
		if err := writeFrame(w, p); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for _, want := range []int{0, 1, 300} {
		f, n, err := readFrame(r, 1000)
		if err != nil || len(f) != want || n != len(appendFrameHeader(nil, want))+want {
			t.Fatalf("got %d bytes (%d consumed), %v; want %d", len(f), n, err, want)
		}
	}
	if _, _, err := readFrame(r, 1000); err != io.EOF {
		t.Errorf("after the last frame: got %v, want io.EOF", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c'})
	f.Add([]byte{0x80, 0x01})
	f.Add([]byte{0x80, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		frame, n, err := readFrame(bufio.NewReader(bytes.NewReader(in)), 1024)
		if err != nil {
			return
		}
		// A frame that parses re-encodes to the bytes it came from.
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writeFrame(w, frame); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), in[:n]) {
			t.Fatalf("re-encoded %x, read from %x", buf.Bytes(), in[:n])
		}
	})
}
