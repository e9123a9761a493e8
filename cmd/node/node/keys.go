package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
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

// newKeyPackage makes a KeyPackage and records its private keys in b.
func (n *Node) newKeyPackage(b *store.Batch, lastResort bool) (*group.KeyPackageBundle, error) {
	kp, err := group.NewKeyPackage(Suite, n.id.Signer, group.KeyPackageOptions{
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
	initKey, err := Suite.ParseHPKEPrivateKey(initB)
	if err != nil {
		return nil, err
	}
	encKey, err := Suite.ParseHPKEPrivateKey(encB)
	if err != nil {
		return nil, err
	}
	return &group.KeyPackageBundle{KeyPackage: m.KeyPackage, InitKey: initKey, EncryptionKey: encKey, Signer: n.id.Signer}, nil
}

const (
	scopeNode     = "node"
	keyLastResort = "last_resort_kp"
)

// lastResortKeyPackage returns the node's last-resort KeyPackage (made on
// first use): the one its contact code carries, usable for any number of
// invitations while the node is offline.
func (n *Node) lastResortKeyPackage(ctx context.Context) ([]byte, error) {
	ref, err := n.st.Setting(ctx, scopeNode, keyLastResort)
	if err == nil {
		if data, err := n.st.KeyPackage(ctx, ref); err == nil {
			kp, err := n.decodeBundle(data)
			if err == nil &&
				time.Unix(int64(kp.KeyPackage.LeafNode.Lifetime.NotAfter), 0).After(time.Now().Add(7*24*time.Hour)) {
				return codec.MustMarshal(wire.NewMLSMessage(kp.KeyPackage)), nil
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	b := n.st.NewBatch()
	kp, err := n.newKeyPackage(b, true)
	if err != nil {
		return nil, err
	}
	b.PutSetting(scopeNode, keyLastResort, kp.Ref())
	if err := n.st.Write(ctx, b); err != nil {
		return nil, err
	}
	return codec.MustMarshal(wire.NewMLSMessage(kp.KeyPackage)), nil
}

// serveKeyPackage gives a peer a fresh, single-use KeyPackage of this
// node, so that it can add this node to a group.
func (n *Node) serveKeyPackage(ctx context.Context, from peer.ID, _ []byte, w p2p.ResponseWriter) error {
	if !n.kpLimit.allow(from, time.Now()) {
		kp, err := n.lastResortKeyPackage(ctx)
		if err != nil {
			return err
		}
		return w.Write(kp)
	}
	b := n.st.NewBatch()
	kp, err := n.newKeyPackage(b, false)
	if err != nil {
		return err
	}
	if err := n.st.Write(ctx, b); err != nil {
		return err
	}
	return w.Write(codec.MustMarshal(wire.NewMLSMessage(kp.KeyPackage)))
}

// keyPackageOf returns a KeyPackage of a contact: a fresh one if it is
// online, else the last-resort one from its contact code.
func (n *Node) keyPackageOf(ctx context.Context, c *contact) ([]byte, error) {
	if n.p2p.Connected(c.peerID) || n.dial(ctx, c.peerID, c.code.Addrs) == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		kp, err := n.p2p.Request(rctx, c.peerID, protoKeyPackage, nil)
		cancel()
		if err == nil && n.checkKeyPackage(kp, c.peerID) == nil {
			return kp, nil
		}
	}
	if err := n.checkKeyPackage(c.code.KeyPackage, c.peerID); err != nil {
		return nil, fmt.Errorf("%s's KeyPackage: %w", c.name, err)
	}
	return c.code.KeyPackage, nil
}

// checkKeyPackage checks that a KeyPackage is valid and is the peer's.
func (n *Node) checkKeyPackage(data []byte, p peer.ID) error {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil || m.KeyPackage == nil {
		return fmt.Errorf("not a KeyPackage")
	}
	if err := group.ValidateKeyPackage(m.KeyPackage, Suite, time.Now(), ValidateCredential); err != nil {
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
