package node

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/p2p"
	"github.com/parley-p2p/parley/store"
	"golang.org/x/crypto/cryptobyte"
)

// capabilities are what Parley members support: the defaults of the mls
// package and Parley's own group context extensions.
func capabilities() *wire.Capabilities {
	c := group.DefaultCapabilities()
	c.Extensions = append(c.Extensions, extTopicSecret, extGroupName)
	return &c
}

// newKeyPackage makes a KeyPackage in cipher suite cs and records its
// private keys in b.
func (n *Node) newKeyPackage(b *store.Batch, cs suite.CipherSuite, lastResort bool) (*group.KeyPackageBundle, error) {
	signer, err := n.id.SignerFor(cs)
	if err != nil {
		return nil, err
	}
	kp, err := group.NewKeyPackage(cs, signer, group.KeyPackageOptions{
		Credential: n.id.Credential(), Capabilities: capabilities(), LastResort: lastResort, Now: time.Now(),
		Grease: true, // RFC 9420 §13.5: see mlsConfig
	})
	if err != nil {
		return nil, err
	}
	b.PutKeyPackage(kp.Ref(), encodeBundle(kp))
	return kp, nil
}

// encodeBundle stores a KeyPackage with its private keys:
//
//	struct { opaque key_package<V>; opaque init_priv<V>; opaque enc_priv<V>; } StoredKeyPackage;
func encodeBundle(kp *group.KeyPackageBundle) []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, codec.MustMarshal(wire.NewMLSMessage(kp.KeyPackage)))
	codec.AddOpaque(&b, kp.InitKey.Bytes())
	codec.AddOpaque(&b, kp.EncryptionKey.Bytes())
	return b.BytesOrPanic()
}

func (n *Node) decodeBundle(data []byte) (*group.KeyPackageBundle, error) {
	s := cryptobyte.String(data)
	var kpb, initB, encB []byte
	if !codec.ReadOpaque(&s, &kpb) || !codec.ReadOpaque(&s, &initB) || !codec.ReadOpaque(&s, &encB) || !s.Empty() {
		return nil, errors.New("node: malformed stored KeyPackage")
	}
	var m wire.MLSMessage
	if err := codec.Unmarshal(kpb, &m); err != nil || m.KeyPackage == nil {
		return nil, errors.New("node: malformed stored KeyPackage")
	}
	cs := m.KeyPackage.CipherSuite
	signer, err := n.id.SignerFor(cs)
	if err != nil {
		return nil, err
	}
	initKey, err := cs.ParseHPKEPrivateKey(initB)
	if err != nil {
		return nil, err
	}
	encKey, err := cs.ParseHPKEPrivateKey(encB)
	if err != nil {
		return nil, err
	}
	return &group.KeyPackageBundle{KeyPackage: m.KeyPackage, InitKey: initKey, EncryptionKey: encKey, Signer: signer}, nil
}

const (
	scopeNode     = "node"
	keyLastResort = "last_resort_kp"
)

// lastResortKey is the setting that names the last-resort KeyPackage of
// suite cs: suite 1's keeps the name it had when it was the only one.
func lastResortKey(cs suite.CipherSuite) string {
	if cs == Suite {
		return keyLastResort
	}
	return fmt.Sprintf("%s/0x%04x", keyLastResort, uint16(cs))
}

// lastResortKeyPackage returns the node's last-resort KeyPackage of suite
// cs (made on first use): usable for any number of invitations, it is
// what the contact code carries (in DefaultSuite) for invitations while
// the node is offline, and what a peer gets once fresh ones are rationed.
func (n *Node) lastResortKeyPackage(ctx context.Context, cs suite.CipherSuite) ([]byte, error) {
	ref, err := n.st.Setting(ctx, scopeNode, lastResortKey(cs))
	if err == nil {
		if data, err := n.st.KeyPackage(ctx, ref); err == nil {
			kp, err := n.decodeBundle(data)
			if err == nil && kp.KeyPackage.CipherSuite == cs &&
				time.Unix(int64(kp.KeyPackage.LeafNode.Lifetime.NotAfter), 0).After(time.Now().Add(7*24*time.Hour)) {
				return codec.MustMarshal(wire.NewMLSMessage(kp.KeyPackage)), nil
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	b := n.st.NewBatch()
	kp, err := n.newKeyPackage(b, cs, true)
	if err != nil {
		return nil, err
	}
	b.PutSetting(scopeNode, lastResortKey(cs), kp.Ref())
	if err := n.st.Write(ctx, b); err != nil {
		return nil, err
	}
	return codec.MustMarshal(wire.NewMLSMessage(kp.KeyPackage)), nil
}

// The KeyPackage request (protoKeyPackage) names the cipher suite of the
// group the requester adds this node to:
//
//	struct {
//	    CipherSuite cipher_suite;  // absent: suite 1 (requests of nodes
//	                               // from before groups had suites)
//	} KeyPackageRequest;
//
// The answer is an MLSMessage holding a KeyPackage of that suite.
func encodeKeyPackageRequest(cs suite.CipherSuite) []byte {
	if cs == Suite {
		return nil // what every node understands
	}
	return binary.BigEndian.AppendUint16(nil, uint16(cs))
}

func decodeKeyPackageRequest(req []byte) (suite.CipherSuite, error) {
	switch len(req) {
	case 0:
		return Suite, nil
	case 2:
		cs := suite.CipherSuite(binary.BigEndian.Uint16(req))
		return cs, checkSuite(cs)
	}
	return 0, errors.New("malformed KeyPackage request")
}

// serveKeyPackage gives a peer a fresh, single-use KeyPackage of this
// node in the suite it asks for, so that it can add this node to a group.
// Fresh KeyPackages are rationed per peer whatever their suite; past the
// ration, the peer gets the suite's last-resort one.
func (n *Node) serveKeyPackage(ctx context.Context, from peer.ID, req []byte, w p2p.ResponseWriter) error {
	cs, err := decodeKeyPackageRequest(req)
	if err != nil {
		return err
	}
	if !n.kpLimit.allow(from, time.Now()) {
		kp, err := n.lastResortKeyPackage(ctx, cs)
		if err != nil {
			return err
		}
		return w.Write(kp)
	}
	b := n.st.NewBatch()
	kp, err := n.newKeyPackage(b, cs, false)
	if err != nil {
		return err
	}
	if err := n.st.Write(ctx, b); err != nil {
		return err
	}
	return w.Write(codec.MustMarshal(wire.NewMLSMessage(kp.KeyPackage)))
}

// keyPackageOf returns a KeyPackage of a contact in suite cs: a fresh one
// if it is online, else the last-resort one from its contact code, if
// that is of cs.
func (n *Node) keyPackageOf(ctx context.Context, c *contact, cs suite.CipherSuite) ([]byte, error) {
	var asked error
	if n.p2p.Connected(c.peerID) || n.dial(ctx, c.peerID, c.code.Addrs) == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		kp, err := n.p2p.Request(rctx, c.peerID, protoKeyPackage, encodeKeyPackageRequest(cs))
		cancel()
		if err == nil {
			err = n.checkKeyPackage(kp, c.peerID, cs)
		}
		if err == nil {
			return kp, nil
		}
		asked = err
	}
	if err := n.checkKeyPackage(c.code.KeyPackage, c.peerID, cs); err != nil {
		if asked != nil {
			return nil, fmt.Errorf("%s's KeyPackage: %w (asking its node: %w)", c.name, err, asked)
		}
		return nil, fmt.Errorf("%s's KeyPackage: %w", c.name, err)
	}
	return c.code.KeyPackage, nil
}

// checkKeyPackage checks that a KeyPackage is valid, of suite cs (0: of
// any suite nodes use), and is the peer's.
func (n *Node) checkKeyPackage(data []byte, p peer.ID, cs suite.CipherSuite) error {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil || m.KeyPackage == nil {
		return fmt.Errorf("not a KeyPackage")
	}
	if cs == 0 {
		cs = m.KeyPackage.CipherSuite
		if err := checkSuite(cs); err != nil {
			return err
		}
	}
	if got := m.KeyPackage.CipherSuite; got != cs {
		return fmt.Errorf("a KeyPackage of suite 0x%04x, not of the group's 0x%04x (%v)", uint16(got), uint16(cs), cs)
	}
	if err := group.ValidateKeyPackage(m.KeyPackage, cs, time.Now(), ValidateCredential); err != nil {
		return err
	}
	owner, _, err := ParseMemberID(string(m.KeyPackage.LeafNode.Credential.Identity))
	if err != nil || owner != p {
		return fmt.Errorf("KeyPackage of %s, not of %s", owner, p)
	}
	return nil
}

func (n *Node) dial(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return n.p2p.Connect(ctx, peer.AddrInfo{ID: p, Addrs: addrs})
}

func hexRef(ref []byte) string { return hex.EncodeToString(ref) }
