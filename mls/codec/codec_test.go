package codec

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func TestVarintRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 37, 63, 64, 15293, 16383, 16384, 494878333, MaxVarint} {
		var b cryptobyte.Builder
		AddVarint(&b, v)
		enc, err := b.Bytes()
		if err != nil {
			t.Fatalf("AddVarint(%d): %v", v, err)
		}
		s := cryptobyte.String(enc)
		var got uint64
		if !ReadVarint(&s, &got) || !s.Empty() || got != v {
			t.Errorf("varint %d: encoded %x, decoded %d (rest %d bytes)", v, enc, got, len(s))
		}
	}
}

func TestVarintExamplesFromRFC(t *testing.T) {
	for _, c := range []struct {
		enc  []byte
		want uint64
	}{
		{[]byte{0x9d, 0x7f, 0x3e, 0x7d}, 494878333},
		{[]byte{0x7b, 0xbd}, 15293},
		{[]byte{0x25}, 37},
	} {
		s := cryptobyte.String(c.enc)
		var got uint64
		if !ReadVarint(&s, &got) || got != c.want {
			t.Errorf("ReadVarint(%x) = %d, want %d", c.enc, got, c.want)
		}
	}
}

func TestVarintRejectsNonMinimalAndReserved(t *testing.T) {
	for _, enc := range [][]byte{
		{0x40, 0x25},             // 37 in two bytes
		{0x40, 0x00},             // 0 in two bytes
		{0x80, 0x00, 0x3f, 0xff}, // 16383 in four bytes
		{0xc0, 0, 0, 0, 0, 0, 0, 1},
		{0x40},             // truncated
		{0x80, 0x00, 0x40}, // truncated
		{},
	} {
		s := cryptobyte.String(enc)
		var v uint64
		if ReadVarint(&s, &v) {
			t.Errorf("ReadVarint(%x) accepted, got %d", enc, v)
		}
	}
}

func TestAddVarintRejectsOutOfRange(t *testing.T) {
	var b cryptobyte.Builder
	AddVarint(&b, MaxVarint+1)
	if _, err := b.Bytes(); !errors.Is(err, ErrVarintRange) {
		t.Errorf("AddVarint(2^30): err = %v, want ErrVarintRange", err)
	}
}

// A length header claiming more bytes than remain must fail without
// allocating or slicing past the input.
func TestReadVectorChecksLengthBeforeUse(t *testing.T) {
	in := []byte{0xbf, 0xff, 0xff, 0xff, 1, 2, 3} // claims 2^30-1 bytes
	s := cryptobyte.String(in)
	var body cryptobyte.String
	allocs := testing.AllocsPerRun(100, func() {
		s = cryptobyte.String(in)
		ReadVector(&s, &body)
	})
	s = cryptobyte.String(in)
	if ReadVector(&s, &body) {
		t.Fatal("ReadVector accepted a length beyond the input")
	}
	if allocs != 0 {
		t.Errorf("ReadVector allocated %v times on a bogus length", allocs)
	}
}

type pair struct {
	a []byte
	b uint32
}

func (p *pair) MarshalMLS(b *cryptobyte.Builder) {
	AddOpaque(b, p.a)
	b.AddUint32(p.b)
}

func (p *pair) UnmarshalMLS(s *cryptobyte.String) bool {
	return ReadOpaque(s, &p.a) && s.ReadUint32(&p.b)
}

func TestUnmarshalRejectsTrailingBytes(t *testing.T) {
	enc := MustMarshal(&pair{a: []byte("hi"), b: 7})
	var p pair
	if err := Unmarshal(enc, &p); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !bytes.Equal(p.a, []byte("hi")) || p.b != 7 {
		t.Errorf("decoded %+v", p)
	}
	if err := Unmarshal(append(enc, 0), &p); !errors.Is(err, ErrTrailingBytes) {
		t.Errorf("trailing byte: err = %v, want ErrTrailingBytes", err)
	}
	if err := Unmarshal(enc[:len(enc)-1], &p); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated: err = %v, want ErrMalformed", err)
	}
}

func TestOptionalRejectsInvalidPresenceByte(t *testing.T) {
	for _, c := range []struct {
		in   byte
		ok   bool
		want bool
	}{{0, true, false}, {1, true, true}, {2, false, false}, {0xff, false, false}} {
		s := cryptobyte.String([]byte{c.in})
		var present bool
		if ok := ReadOptional(&s, &present); ok != c.ok || present != c.want {
			t.Errorf("ReadOptional(%d) = %v,%v want %v,%v", c.in, present, ok, c.want, c.ok)
		}
	}
}

func TestNestedVectorsEncodeLengths(t *testing.T) {
	var b cryptobyte.Builder
	AddVector(&b, func(b *cryptobyte.Builder) {
		AddOpaque(b, bytes.Repeat([]byte{1}, 100))
	})
	enc := b.BytesOrPanic()
	// outer length 102 (2-byte header), inner length 100 (2-byte header)
	if want := []byte{0x40, 102, 0x40, 100}; !bytes.Equal(enc[:4], want) {
		t.Errorf("headers %x, want %x", enc[:4], want)
	}
	if len(enc) != 104 {
		t.Errorf("len %d, want 104", len(enc))
	}
}

func FuzzVarint(f *testing.F) {
	for _, s := range [][]byte{{0}, {0x25}, {0x7b, 0xbd}, {0x9d, 0x7f, 0x3e, 0x7d}, {0x40, 0x25}, {0xc0}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := cryptobyte.String(data)
		var v uint64
		if !ReadVarint(&s, &v) {
			return
		}
		var b cryptobyte.Builder
		AddVarint(&b, v)
		enc := b.BytesOrPanic()
		if !bytes.Equal(enc, data[:len(data)-len(s)]) {
			t.Fatalf("varint %d decoded from %x re-encodes as %x", v, data[:len(data)-len(s)], enc)
		}
	})
}
