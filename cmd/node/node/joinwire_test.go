package node

import (
	"bytes"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

const testJoinerID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"

func testJoinRequestMsg(t testing.TB) *joinRequestMsg {
	t.Helper()
	p, err := peer.Decode(testJoinerID)
	if err != nil {
		t.Fatal(err)
	}
	m := &joinRequestMsg{id: [joinIDLen]byte{1, 2, 3, 4, 5, 6, 7, 8}, joiner: p, keyPackage: []byte("an MLSMessage")}
	for _, s := range []string{"/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1"} {
		m.addrs = append(m.addrs, ma.StringCast(s))
	}
	return m
}

// TestJoinWireRoundTrips: each join message decodes to what was encoded
// and encodes again to the same bytes.
func TestJoinWireRoundTrips(t *testing.T) {
	req := testJoinRequestMsg(t)
	noAddrs := testJoinRequestMsg(t)
	noAddrs.addrs = nil
	for _, want := range []*joinRequestMsg{req, noAddrs} {
		data := want.encode()
		got, err := decodeJoinRequest(data)
		if err != nil {
			t.Fatal(err)
		}
		if got.id != want.id || got.joiner != want.joiner || !bytes.Equal(got.keyPackage, want.keyPackage) || len(got.addrs) != len(want.addrs) {
			t.Errorf("request decodes as %+v, want %+v", got, want)
		}
		for i := range got.addrs {
			if !got.addrs[i].Equal(want.addrs[i]) {
				t.Errorf("address %d: got %s, want %s", i, got.addrs[i], want.addrs[i])
			}
		}
		if again := got.encode(); !bytes.Equal(again, data) {
			t.Errorf("request re-encodes as %x, want %x", again, data)
		}
	}
	for _, want := range []joinDecisionMsg{{id: [joinIDLen]byte{9}, approved: true}, {id: [joinIDLen]byte{8, 7}}} {
		data := want.encode()
		got, err := decodeJoinDecision(data)
		if err != nil {
			t.Fatal(err)
		}
		if *got != want {
			t.Errorf("decision decodes as %+v, want %+v", *got, want)
		}
		if again := got.encode(); !bytes.Equal(again, data) {
			t.Errorf("decision re-encodes as %x, want %x", again, data)
		}
	}
}

// TestJoinWireRejectsMalformed: truncated, trailing, oversized and
// otherwise malformed join messages are refused.
func TestJoinWireRejectsMalformed(t *testing.T) {
	good := testJoinRequestMsg(t)
	goodData := good.encode()
	build := func(f func(b *cryptobyte.Builder)) []byte {
		var b cryptobyte.Builder
		f(&b)
		return b.BytesOrPanic()
	}
	tooMany := testJoinRequestMsg(t)
	for len(tooMany.addrs) <= maxJoinAddrs {
		tooMany.addrs = append(tooMany.addrs, ma.StringCast("/ip4/10.0.0.1/tcp/1"))
	}
	big := testJoinRequestMsg(t)
	big.keyPackage = make([]byte, maxJoinMessage)
	noKP := testJoinRequestMsg(t)
	noKP.keyPackage = nil
	requests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short id", goodData[:joinIDLen-1]},
		{"truncated", goodData[:len(goodData)-1]},
		{"trailing byte", append(bytes.Clone(goodData), 0)},
		{"too many addresses", tooMany.encode()},
		{"oversized", big.encode()},
		{"no KeyPackage", noKP.encode()},
		{"bad peer id", build(func(b *cryptobyte.Builder) {
			b.AddBytes(good.id[:])
			codec.AddOpaque(b, []byte("not a peer id"))
			addAddrs(b, nil)
			codec.AddOpaque(b, good.keyPackage)
		})},
		{"bad address", build(func(b *cryptobyte.Builder) {
			b.AddBytes(good.id[:])
			codec.AddOpaque(b, []byte(good.joiner))
			codec.AddVector(b, func(b *cryptobyte.Builder) { codec.AddOpaque(b, []byte{0xff, 0xff}) })
			codec.AddOpaque(b, good.keyPackage)
		})},
		{"non-minimal length", build(func(b *cryptobyte.Builder) {
			b.AddBytes(good.id[:])
			b.AddUint16(0x4000 | uint16(len(good.joiner))) // two-byte varint for a length under 64
			b.AddBytes([]byte(good.joiner))
			addAddrs(b, nil)
			codec.AddOpaque(b, good.keyPackage)
		})},
	}
	for _, tc := range requests {
		if _, err := decodeJoinRequest(tc.data); !errors.Is(err, errBadJoinMessage) {
			t.Errorf("request, %s: %v, want a malformed join message", tc.name, err)
		}
	}
	decision := (&joinDecisionMsg{id: [joinIDLen]byte{1}, approved: true}).encode()
	decisions := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"no decision", decision[:joinIDLen]},
		{"decision 0", append(bytes.Clone(decision[:joinIDLen]), 0)},
		{"decision 3", append(bytes.Clone(decision[:joinIDLen]), 3)},
		{"trailing byte", append(bytes.Clone(decision), 1)},
	}
	for _, tc := range decisions {
		if _, err := decodeJoinDecision(tc.data); !errors.Is(err, errBadJoinMessage) {
			t.Errorf("decision, %s: %v, want a malformed join message", tc.name, err)
		}
	}
}

// FuzzJoinWire: no input crashes a join message decoder, and what
// decodes encodes again to the same bytes.
func FuzzJoinWire(f *testing.F) {
	f.Add(testJoinRequestMsg(f).encode())
	f.Add((&joinDecisionMsg{id: [joinIDLen]byte{1}, approved: true}).encode())
	f.Add((&joinDecisionMsg{id: [joinIDLen]byte{2}}).encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := decodeJoinRequest(data); err == nil {
			if again := m.encode(); !bytes.Equal(again, data) {
				t.Errorf("request %x re-encodes as %x", data, again)
			}
			if len(m.addrs) > maxJoinAddrs || len(m.keyPackage) == 0 {
				t.Errorf("request %x decodes with %d addresses and a KeyPackage of %d bytes", data, len(m.addrs), len(m.keyPackage))
			}
		} else if !errors.Is(err, errBadJoinMessage) {
			t.Errorf("request %x: %v", data, err)
		}
		if m, err := decodeJoinDecision(data); err == nil {
			if again := m.encode(); !bytes.Equal(again, data) {
				t.Errorf("decision %x re-encodes as %x", data, again)
			}
		} else if !errors.Is(err, errBadJoinMessage) {
			t.Errorf("decision %x: %v", data, err)
		}
	})
}
