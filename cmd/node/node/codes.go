package node

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"golang.org/x/crypto/cryptobyte"
)

// Contact and invite codes are text a person copies: a prefix, then the
// base64url encoding of a TLS-style structure.
const (
	contactPrefix = "parley-contact:"
	invitePrefix  = "parley-invite:"
	codeVersion   = 1
)

// contactCode is what a node gives out so that others can add it:
//
//	struct {
//	    uint8 version = 1;
//	    opaque peer_id<V>;
//	    opaque name<V>;
//	    opaque addrs<V>;        // opaque addr<V> (multiaddr bytes)
//	    opaque key_package<V>;  // MLSMessage (a last-resort KeyPackage)
//	} ContactCode;
type contactCode struct {
	PeerID     peer.ID
	Name       string
	Addrs      []ma.Multiaddr
	KeyPackage []byte
}

// inviteCode lets someone not yet known reach a member and ask to join:
//
//	struct {
//	    uint8 version = 1;
//	    opaque group_id<V>;
//	    opaque group_name<V>;
//	    opaque peer_id<V>;      // the inviting member
//	    opaque addrs<V>;
//	    opaque token<V>;        // one use, checked by the inviting member
//	    CipherSuite suite;      // absent for suite 1 (codes from before
//	                            // groups had suites)
//	} InviteCode;
type inviteCode struct {
	GroupID   []byte
	GroupName string
	PeerID    peer.ID
	Addrs     []ma.Multiaddr
	Token     []byte
	Suite     suite.CipherSuite // the group's: the joiner's KeyPackage must be of it
}

func addAddrs(b *cryptobyte.Builder, addrs []ma.Multiaddr) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, a := range addrs {
			codec.AddOpaque(b, a.Bytes())
		}
	})
}

func readAddrs(s *cryptobyte.String, out *[]ma.Multiaddr) bool {
	return codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var raw []byte
		if !codec.ReadOpaque(s, &raw) {
			return false
		}
		a, err := ma.NewMultiaddrBytes(raw)
		if err != nil {
			return false
		}
		*out = append(*out, a)
		return true
	})
}

func readPeerID(s *cryptobyte.String, out *peer.ID) bool {
	var raw []byte
	if !codec.ReadOpaque(s, &raw) {
		return false
	}
	p, err := peer.IDFromBytes(raw)
	*out = p
	return err == nil
}

func (c *contactCode) String() string {
	var b cryptobyte.Builder
	b.AddUint8(codeVersion)
	codec.AddOpaque(&b, []byte(c.PeerID))
	codec.AddOpaque(&b, []byte(c.Name))
	addAddrs(&b, c.Addrs)
	codec.AddOpaque(&b, c.KeyPackage)
	return contactPrefix + base64.RawURLEncoding.EncodeToString(b.BytesOrPanic())
}

func decodeCode(code, prefix string) (cryptobyte.String, error) {
	code = strings.TrimSpace(code)
	if !strings.HasPrefix(code, prefix) {
		return nil, fmt.Errorf("%w: it does not start with %q", api.ErrBadCode, prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(code, prefix))
	if err != nil {
		return nil, fmt.Errorf("%w: %v (was it copied whole?)", api.ErrBadCode, err)
	}
	s := cryptobyte.String(raw)
	var v uint8
	if !s.ReadUint8(&v) || v != codeVersion {
		return nil, fmt.Errorf("%w: version %d", api.ErrBadCode, v)
	}
	return s, nil
}

func parseContactCode(code string) (*contactCode, error) {
	s, err := decodeCode(code, contactPrefix)
	if err != nil {
		return nil, err
	}
	c := &contactCode{}
	var name []byte
	if !readPeerID(&s, &c.PeerID) || !codec.ReadOpaque(&s, &name) || !readAddrs(&s, &c.Addrs) ||
		!codec.ReadOpaque(&s, &c.KeyPackage) || !s.Empty() {
		return nil, fmt.Errorf("%w: malformed contact code", api.ErrBadCode)
	}
	c.Name = string(name)
	if err := CheckName(c.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrBadCode, err)
	}
	return c, nil
}

func (c *inviteCode) String() string {
	var b cryptobyte.Builder
	b.AddUint8(codeVersion)
	codec.AddOpaque(&b, c.GroupID)
	codec.AddOpaque(&b, []byte(c.GroupName))
	codec.AddOpaque(&b, []byte(c.PeerID))
	addAddrs(&b, c.Addrs)
	codec.AddOpaque(&b, c.Token)
	if c.Suite != Suite && c.Suite != 0 {
		b.AddUint16(uint16(c.Suite)) // older nodes read suite 1's codes
	}
	return invitePrefix + base64.RawURLEncoding.EncodeToString(b.BytesOrPanic())
}

func parseInviteCode(code string) (*inviteCode, error) {
	s, err := decodeCode(code, invitePrefix)
	if err != nil {
		return nil, err
	}
	c := &inviteCode{Suite: Suite}
	var name []byte
	if !codec.ReadOpaque(&s, &c.GroupID) || !codec.ReadOpaque(&s, &name) || !readPeerID(&s, &c.PeerID) ||
		!readAddrs(&s, &c.Addrs) || !codec.ReadOpaque(&s, &c.Token) {
		return nil, fmt.Errorf("%w: malformed invite code", api.ErrBadCode)
	}
	if !s.Empty() {
		var cs uint16
		if !s.ReadUint16(&cs) || !s.Empty() {
			return nil, fmt.Errorf("%w: malformed invite code", api.ErrBadCode)
		}
		c.Suite = suite.CipherSuite(cs)
		if c.Suite == Suite {
			return nil, fmt.Errorf("%w: malformed invite code", api.ErrBadCode) // suite 1's codes name none
		}
		if err := checkSuite(c.Suite); err != nil {
			return nil, fmt.Errorf("%w: %v", api.ErrBadCode, err)
		}
	}
	if len(c.GroupID) != 32 || len(c.Token) != 16 {
		return nil, fmt.Errorf("%w: malformed invite code", api.ErrBadCode)
	}
	c.GroupName = string(name)
	return c, nil
}

// encodeAddrInfos and decodeAddrInfos carry a list of peers with their
// addresses (the parley-addrs protocol).
func encodeAddrInfos(infos []peer.AddrInfo) []byte {
	var b cryptobyte.Builder
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, ai := range infos {
			codec.AddOpaque(b, []byte(ai.ID))
			addAddrs(b, ai.Addrs)
		}
	})
	return b.BytesOrPanic()
}

func decodeAddrInfos(data []byte) ([]peer.AddrInfo, error) {
	s := cryptobyte.String(data)
	var out []peer.AddrInfo
	if !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		var ai peer.AddrInfo
		if !readPeerID(s, &ai.ID) || !readAddrs(s, &ai.Addrs) {
			return false
		}
		out = append(out, ai)
		return true
	}) || !s.Empty() {
		return nil, fmt.Errorf("malformed address list")
	}
	return out, nil
}
