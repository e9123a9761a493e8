package p2p

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

func TestPeerRecordRoundTrip(t *testing.T) {
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/4001"),
		ma.StringCast("/ip6/::1/udp/4001/quic-v1"),
	}
	seen := time.Unix(1_800_000_000, 0)
	raw, err := encodePeerRecord(peerRecord{Addrs: addrs, LastSeen: seen})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePeerRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeen.Equal(seen) || len(got.Addrs) != 2 || !got.Addrs[0].Equal(addrs[0]) || !got.Addrs[1].Equal(addrs[1]) {
		t.Errorf("got %+v, want %v seen %v", got, addrs, seen)
	}
}

func TestMalformedPeerRecordsAreRejected(t *testing.T) {
	good, _ := encodePeerRecord(peerRecord{Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}, LastSeen: time.Unix(1, 0)})
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"wrong version", append([]byte{2}, good[1:]...)},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"truncated", good[:len(good)-1]},
		{"empty address", []byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0}},
		{"garbage address", []byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 0, 1, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodePeerRecord(tc.raw); !errors.Is(err, ErrBadPeerRecord) {
				t.Errorf("got %v, want ErrBadPeerRecord", err)
			}
		})
	}
}

func FuzzDecodePeerRecord(f *testing.F) {
	good, _ := encodePeerRecord(peerRecord{Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}, LastSeen: time.Unix(1, 0)})
	f.Add(good)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := decodePeerRecord(raw)
		if err != nil {
			return
		}
		again, err := encodePeerRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, raw) {
			t.Fatalf("re-encoded %x, decoded from %x", again, raw)
		}
	})
}

func TestRestartedHostReconnectsToKnownPeers(t *testing.T) {
	book := &MemPeerBook{}
	key := newKey(t)
	peers := startNodes(t, 2)
	first := startNode(t, key, WithPeerBook(book))
	for _, p := range peers {
		connect(t, first, p)
	}
	eventually(t, waitShort, "both peers in the book", func() bool {
		recs, _ := book.Peers(context.Background())
		return recs[peers[0].ID().String()] != nil && recs[peers[1].ID().String()] != nil
	})
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "peers to see the disconnect", func() bool {
		return !peers[0].Connected(key2id(t, key)) && !peers[1].Connected(key2id(t, key))
	})

	second := startNode(t, key, WithPeerBook(book))
	eventually(t, waitLong, "reconnection to both known peers", func() bool {
		return second.Connected(peers[0].ID()) && second.Connected(peers[1].ID())
	})
}

func TestNodeRedialsKnownPeerAfterLosingIt(t *testing.T) {
	book := &MemPeerBook{}
	a := startNode(t, nil, WithPeerBook(book), WithRedialInterval(200*time.Millisecond))
	b := startNode(t, nil)
	connect(t, a, b)
	eventually(t, waitShort, "b in the book", func() bool {
		recs, _ := book.Peers(context.Background())
		return recs[b.ID().String()] != nil
	})
	if err := a.host.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitLong, "redial", func() bool { return a.Connected(b.ID()) })
}
