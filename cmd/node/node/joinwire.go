package node

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

// Wire formats of the join requests shared with the group (see
// joinshare.go). Both travel as application messages, inside the
// MLS-encrypted content, so only members read them.

// joinRequestMsg is the body of a contentJoinRequest message: the
// inviting member hands a join that waits for any member's approval to
// the group.
//
//	struct {
//	    opaque request_id[8];
//	    opaque peer_id<V>;       // the joiner
//	    opaque addrs<V>;         // opaque addr<V> (multiaddr bytes), at most maxJoinAddrs
//	    opaque key_package<V>;   // MLSMessage: the joiner's KeyPackage
//	} JoinRequestMessage;
type joinRequestMsg struct {
	id         [joinIDLen]byte
	joiner     peer.ID
	addrs      []ma.Multiaddr
	keyPackage []byte
}

// joinDecisionMsg is the body of a contentJoinDecision message: a member
// approved or denied a shared join request.
//
//	enum { approved(1), denied(2), (255) } JoinDecision;
//
//	struct {
//	    opaque request_id[8];
//	    JoinDecision decision;
//	} JoinDecisionMessage;
type joinDecisionMsg struct {
	id       [joinIDLen]byte
	approved bool
}

const (
	joinIDLen = 8
	// maxJoinMessage bounds a join message (a KeyPackage of the largest
	// suite is a few KiB).
	maxJoinMessage = 64 << 10
	// maxJoinAddrs bounds the joiner's addresses a request carries.
	maxJoinAddrs = 16

	joinApproved uint8 = 1
	joinDenied   uint8 = 2
)

// errBadJoinMessage is a join message that does not decode.
var errBadJoinMessage = errors.New("node: malformed join message")

func (m *joinRequestMsg) encode() []byte {
	var b cryptobyte.Builder
	b.AddBytes(m.id[:])
	codec.AddOpaque(&b, []byte(m.joiner))
	addAddrs(&b, m.addrs)
	codec.AddOpaque(&b, m.keyPackage)
	return b.BytesOrPanic()
}

func decodeJoinRequest(data []byte) (*joinRequestMsg, error) {
	if len(data) > maxJoinMessage {
		return nil, fmt.Errorf("%w: %d bytes", errBadJoinMessage, len(data))
	}
	s := cryptobyte.String(data)
	m := &joinRequestMsg{}
	var id, kp []byte
	if !s.ReadBytes(&id, joinIDLen) || !readPeerID(&s, &m.joiner) || !readJoinAddrs(&s, &m.addrs) ||
		!codec.ReadOpaque(&s, &kp) || !s.Empty() {
		return nil, errBadJoinMessage
	}
	if len(kp) == 0 {
		return nil, fmt.Errorf("%w: no KeyPackage", errBadJoinMessage)
	}
	m.id = [joinIDLen]byte(id)
	m.keyPackage = bytes.Clone(kp)
	return m, nil
}

// readJoinAddrs reads at most maxJoinAddrs addresses, each in its one
// encoding (what does not re-encode to the same bytes is refused).
func readJoinAddrs(s *cryptobyte.String, out *[]ma.Multiaddr) bool {
	return codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var raw []byte
		if len(*out) == maxJoinAddrs || !codec.ReadOpaque(s, &raw) {
			return false
		}
		a, err := ma.NewMultiaddrBytes(bytes.Clone(raw))
		if err != nil || !bytes.Equal(a.Bytes(), raw) {
			return false
		}
		*out = append(*out, a)
		return true
	})
}

func (m *joinDecisionMsg) encode() []byte {
	var b cryptobyte.Builder
	b.AddBytes(m.id[:])
	if m.approved {
		b.AddUint8(joinApproved)
	} else {
		b.AddUint8(joinDenied)
	}
	return b.BytesOrPanic()
}

func decodeJoinDecision(data []byte) (*joinDecisionMsg, error) {
	s := cryptobyte.String(data)
	var id []byte
	var d uint8
	if !s.ReadBytes(&id, joinIDLen) || !s.ReadUint8(&d) || !s.Empty() {
		return nil, errBadJoinMessage
	}
	if d != joinApproved && d != joinDenied {
		return nil, fmt.Errorf("%w: decision %d", errBadJoinMessage, d)
	}
	return &joinDecisionMsg{id: [joinIDLen]byte(id), approved: d == joinApproved}, nil
}
