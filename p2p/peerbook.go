package p2p

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/crypto/cryptobyte"
)

// PeerBook remembers peers across restarts. The store implements it; it
// sees only strings and opaque bytes.
type PeerBook interface {
	// PutPeer stores (or replaces) the record of peer id (a peer.ID in its
	// string form).
	PutPeer(ctx context.Context, id string, record []byte) error
	// Peers returns every stored record by peer id.
	Peers(ctx context.Context) (map[string][]byte, error)
}

// MemPeerBook is a PeerBook in memory, for tests and ephemeral nodes.
type MemPeerBook struct {
	mu    sync.Mutex
	peers map[string][]byte
}

// PutPeer implements PeerBook.
func (b *MemPeerBook) PutPeer(_ context.Context, id string, record []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.peers == nil {
		b.peers = make(map[string][]byte)
	}
	b.peers[id] = append([]byte(nil), record...)
	return nil
}

// Peers implements PeerBook.
func (b *MemPeerBook) Peers(context.Context) (map[string][]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.peers), nil
}

// peerRecord is what the PeerBook stores for one peer:
//
//	struct {
//	    uint8  version = 1;
//	    uint64 last_seen;            // Unix seconds
//	    opaque addrs<0..2^16-1>;     // of opaque addr<1..2^16-1> (multiaddr bytes)
//	} PeerRecord;
type peerRecord struct {
	Addrs    []ma.Multiaddr
	LastSeen time.Time
}

const (
	peerRecordVersion  = 1
	maxPeerRecordAddrs = 32
)

func encodePeerRecord(r peerRecord) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(peerRecordVersion)
	b.AddUint64(uint64(r.LastSeen.Unix()))
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, a := range r.Addrs[:min(len(r.Addrs), maxPeerRecordAddrs)] {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(a.Bytes()) })
		}
	})
	return b.Bytes()
}

func decodePeerRecord(raw []byte) (peerRecord, error) {
	s := cryptobyte.String(raw)
	var (
		version uint8
		seen    uint64
		list    cryptobyte.String
	)
	if !s.ReadUint8(&version) || version != peerRecordVersion ||
		!s.ReadUint64(&seen) || !s.ReadUint16LengthPrefixed(&list) || !s.Empty() {
		return peerRecord{}, ErrBadPeerRecord
	}
	r := peerRecord{LastSeen: time.Unix(int64(seen), 0)}
	for !list.Empty() {
		var a cryptobyte.String
		if !list.ReadUint16LengthPrefixed(&a) || a.Empty() || len(r.Addrs) == maxPeerRecordAddrs {
			return peerRecord{}, ErrBadPeerRecord
		}
		addr, err := ma.NewMultiaddrBytes(a)
		if err != nil {
			return peerRecord{}, fmt.Errorf("%w: %w", ErrBadPeerRecord, err)
		}
		r.Addrs = append(r.Addrs, addr)
	}
	return r, nil
}
