package node

import (
	"bytes"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/suite"
)

func testPeer(t testing.TB) peer.ID {
	id, err := NewIdentity("x")
	if err != nil {
		t.Fatal(err)
	}
	return id.PeerID
}

func TestCodesRoundTripAndRejectDamage(t *testing.T) {
	p := testPeer(t)
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	inv := &inviteCode{GroupID: bytes.Repeat([]byte{7}, 32), GroupName: "club", PeerID: p, Addrs: []ma.Multiaddr{addr}, Token: bytes.Repeat([]byte{1}, 16)}
	got, err := parseInviteCode(inv.String())
	if err != nil || got.GroupName != "club" || got.PeerID != p || !bytes.Equal(got.Token, inv.Token) || len(got.Addrs) != 1 {
		t.Fatalf("invite code round trip: %+v, %v", got, err)
	}
	code := inv.String()
	for _, bad := range []string{"", "parley-invite:", code[:len(code)-3], "parley-contact:" + code[len(invitePrefix):], code + "AA", "parley-invite:!!!"} {
		if _, err := parseInviteCode(bad); !errors.Is(err, api.ErrBadCode) {
			t.Errorf("parseInviteCode(%q) = %v, want ErrBadCode", bad, err)
		}
	}
	cc := &contactCode{PeerID: p, Name: "bob", Addrs: []ma.Multiaddr{addr}, KeyPackage: []byte{1, 2, 3}}
	back, err := parseContactCode(cc.String())
	if err != nil || back.Name != "bob" || back.PeerID != p || !bytes.Equal(back.KeyPackage, cc.KeyPackage) {
		t.Fatalf("contact code round trip: %+v, %v", back, err)
	}
	bad := &contactCode{PeerID: p, Name: "bad\x00name", KeyPackage: []byte{1}}
	if _, err := parseContactCode(bad.String()); !errors.Is(err, api.ErrBadCode) {
		t.Errorf("a contact code with a control character in the name: %v", err)
	}
	infos := []peer.AddrInfo{{ID: p, Addrs: []ma.Multiaddr{addr}}}
	if back, err := decodeAddrInfos(encodeAddrInfos(infos)); err != nil || len(back) != 1 || back[0].ID != p {
		t.Fatalf("address list round trip: %v, %v", back, err)
	}
}

// FuzzCodes: contact codes, invite codes and address lists from strangers
// never panic the parsers.
func FuzzCodes(f *testing.F) {
	p := testPeer(f)
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	f.Add((&inviteCode{GroupID: make([]byte, 32), GroupName: "g", PeerID: p, Addrs: []ma.Multiaddr{addr}, Token: make([]byte, 16)}).String())
	f.Add((&inviteCode{GroupID: make([]byte, 32), GroupName: "g", PeerID: p, Addrs: []ma.Multiaddr{addr}, Token: make([]byte, 16), Suite: suite.MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519}).String())
	f.Add("\x00\x54")
	f.Add((&contactCode{PeerID: p, Name: "n", Addrs: []ma.Multiaddr{addr}, KeyPackage: []byte{1}}).String())
	f.Add(string(encodeAddrInfos([]peer.AddrInfo{{ID: p, Addrs: []ma.Multiaddr{addr}}})))
	f.Fuzz(func(t *testing.T, s string) {
		parseInviteCode(s)
		parseContactCode(s)
		decodeAddrInfos([]byte(s))
		if cs, err := decodeKeyPackageRequest([]byte(s)); err == nil && checkSuite(cs) != nil {
			t.Errorf("KeyPackage request %x: suite %v accepted", s, cs)
		}
		ValidateCredential(nil, nil) // must not panic on nil either
	})
}
