package node

import (
	"bytes"
	"errors"
	"testing"
)

func testAnnouncement() *fileAnnouncement {
	a := &fileAnnouncement{name: "photo.jpg", size: 3<<20 + 5, chunkSize: chunkSize}
	a.sha256[0], a.key[31] = 0xaa, 0x55
	return a
}

func testFileRequest() *fileRequest {
	r := &fileRequest{groupID: bytes.Repeat([]byte{7}, 32), requester: "12D3KooWA/alice", responder: "12D3KooWB/bob",
		time: 1_700_000_000_000, first: 3, count: 32, signatureKey: bytes.Repeat([]byte{1}, 32), signature: bytes.Repeat([]byte{2}, 64)}
	r.nonce[0], r.fileID[15] = 9, 4
	return r
}

// TestChunkSealing: a chunk opens only as the chunk it was sealed as: its
// index, its file, its group and its key; any changed byte fails.
func TestChunkSealing(t *testing.T) {
	gid := bytes.Repeat([]byte{1}, 32)
	var key, otherKey [32]byte
	key[0], otherKey[0] = 1, 2
	file, otherFile := [16]byte{1}, [16]byte{2}
	c, err := newChunkAEAD(key, gid, file)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("the bytes of chunk five")
	frame := c.encodeChunkFrame(nil, 5, plain)
	if len(frame) != 4+c.sealedLen(len(plain)) {
		t.Fatalf("frame of %d bytes, want %d", len(frame), 4+c.sealedLen(len(plain)))
	}
	index, got, err := c.openChunkFrame(nil, bytes.Clone(frame))
	if err != nil || index != 5 || !bytes.Equal(got, plain) {
		t.Fatalf("open = %d, %q, %v; want 5, %q", index, got, err, plain)
	}
	// Into a buffer of the caller's: the frame stays as it came.
	kept := bytes.Clone(frame)
	buf := make([]byte, 3, 64)
	index, got, err = c.openChunkFrame(buf, kept)
	if err != nil || index != 5 || !bytes.Equal(got, plain) || &got[0] != &buf[:1][0] || !bytes.Equal(kept, frame) {
		t.Fatalf("open into a buffer = %d, %q, %v (in the buffer: %v, frame kept: %v); want 5, %q",
			index, got, err, &got[0] == &buf[:1][0], bytes.Equal(kept, frame), plain)
	}
	if again := c.encodeChunkFrame(nil, 5, plain); bytes.Equal(again, frame) {
		t.Error("two seals of one chunk are alike: the nonce is not fresh")
	}
	other := func(key [32]byte, gid []byte, file [16]byte) *chunkAEAD {
		c, err := newChunkAEAD(key, gid, file)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	reindexed := bytes.Clone(frame)
	reindexed[3] = 6
	tests := []struct {
		name  string
		c     *chunkAEAD
		frame []byte
	}{
		{"another index", c, reindexed},
		{"another file", other(key, gid, otherFile), frame},
		{"another group", other(key, bytes.Repeat([]byte{2}, 32), file), frame},
		{"another key", other(otherKey, gid, file), frame},
		{"truncated", c, frame[:len(frame)-1]},
		{"too short for a tag", c, frame[:4+12]},
		{"empty", c, nil},
	}
	for i := 4; i < len(frame); i++ {
		flipped := bytes.Clone(frame)
		flipped[i] ^= 0x80
		tests = append(tests, struct {
			name  string
			c     *chunkAEAD
			frame []byte
		}{"byte flipped", c, flipped})
	}
	for _, tc := range tests {
		if _, _, err := tc.c.openChunkFrame(nil, bytes.Clone(tc.frame)); !errors.Is(err, errBadChunk) {
			t.Errorf("%s: open = %v, want errBadChunk", tc.name, err)
		}
	}
}

// TestFileWireRoundTrips: announcements and requests decode to what was
// encoded, and encode back to the same bytes.
func TestFileWireRoundTrips(t *testing.T) {
	a := testAnnouncement()
	enc := a.encode()
	back, err := decodeAnnouncement(enc)
	if err != nil || *back != *a {
		t.Fatalf("announcement round trip: %+v, %v; want %+v", back, err, a)
	}
	r := testFileRequest()
	renc := r.encode()
	rback, err := decodeFileRequest(renc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rback.encode(), renc) || !bytes.Equal(rback.tbs(), r.tbs()) {
		t.Fatalf("request round trip: %+v, want %+v", rback, r)
	}
}

// TestFileWireRejectsMalformed: truncations, trailing bytes and values out
// of range are refused with the format's sentinel.
func TestFileWireRejectsMalformed(t *testing.T) {
	enc := testAnnouncement().encode()
	for i := range enc {
		if _, err := decodeAnnouncement(enc[:i]); !errors.Is(err, errBadAnnouncement) {
			t.Errorf("announcement cut to %d bytes: %v", i, err)
		}
	}
	bad := map[string]func(a *fileAnnouncement){
		"empty name":       func(a *fileAnnouncement) { a.name = "" },
		"long name":        func(a *fileAnnouncement) { a.name = string(bytes.Repeat([]byte{'a'}, maxFileName+1)) },
		"over 1 GiB":       func(a *fileAnnouncement) { a.size = maxFileSize + 1 },
		"negative size":    func(a *fileAnnouncement) { a.size = -1 },
		"tiny chunks":      func(a *fileAnnouncement) { a.chunkSize = minChunkSize - 1 },
		"huge chunks":      func(a *fileAnnouncement) { a.chunkSize = maxChunkSize + 1 },
		"no chunks at all": func(a *fileAnnouncement) { a.chunkSize = 0 },
	}
	for name, change := range bad {
		a := testAnnouncement()
		change(a)
		if _, err := decodeAnnouncement(a.encode()); !errors.Is(err, errBadAnnouncement) {
			t.Errorf("announcement with %s: %v", name, err)
		}
	}
	if _, err := decodeAnnouncement(append(enc, 0)); !errors.Is(err, errBadAnnouncement) {
		t.Errorf("announcement with a trailing byte: %v", err)
	}

	renc := testFileRequest().encode()
	for i := range renc {
		if _, err := decodeFileRequest(renc[:i]); !errors.Is(err, errBadFileRequest) {
			t.Errorf("request cut to %d bytes: %v", i, err)
		}
	}
	if _, err := decodeFileRequest(append(renc, 0)); !errors.Is(err, errBadFileRequest) {
		t.Errorf("request with a trailing byte: %v", err)
	}
	for _, count := range []uint32{0, maxWindow + 1, 1 << 31} {
		r := testFileRequest()
		r.count = count
		if _, err := decodeFileRequest(r.encode()); !errors.Is(err, errBadFileRequest) {
			t.Errorf("request for %d chunks: %v", count, err)
		}
	}
}

func TestChunkArithmetic(t *testing.T) {
	tests := []struct {
		size          int64
		chunk, chunks int
		last          int
	}{
		{0, 4096, 0, 0},
		{1, 4096, 1, 1},
		{4096, 4096, 1, 4096},
		{4097, 4096, 2, 1},
		{maxFileSize, chunkSize, 4096, chunkSize},
	}
	for _, tc := range tests {
		got := chunkCount(tc.size, tc.chunk)
		if got != tc.chunks {
			t.Errorf("chunkCount(%d, %d) = %d, want %d", tc.size, tc.chunk, got, tc.chunks)
		}
		if got > 0 {
			if l := chunkLen(tc.size, tc.chunk, got-1); l != tc.last {
				t.Errorf("last chunk of %d bytes in chunks of %d: %d bytes, want %d", tc.size, tc.chunk, l, tc.last)
			}
		}
	}
}

// FuzzFileWire: announcements, file requests and chunk frames from other
// members never panic the decoders; what decodes encodes back to the same
// bytes.
func FuzzFileWire(f *testing.F) {
	f.Add(testAnnouncement().encode())
	f.Add(testFileRequest().encode())
	c, err := newChunkAEAD([32]byte{1}, make([]byte, 32), [16]byte{1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.encodeChunkFrame(nil, 1, []byte("chunk")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, err := decodeAnnouncement(data); err == nil && !bytes.Equal(a.encode(), data) {
			t.Errorf("announcement %x re-encodes as %x", data, a.encode())
		}
		if r, err := decodeFileRequest(data); err == nil && !bytes.Equal(r.encode(), data) {
			t.Errorf("request %x re-encodes as %x", data, r.encode())
		}
		if _, _, err := c.openChunkFrame(nil, bytes.Clone(data)); err != nil && !errors.Is(err, errBadChunk) {
			t.Errorf("chunk frame %x: %v", data, err)
		}
	})
}
