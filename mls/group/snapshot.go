package group

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// snapshotVersion is the format version of MarshalBinary; Restore refuses
// others.
const snapshotVersion = 1

// MarshalBinary encodes the whole State: group context, tree, private keys,
// signature key, epoch secrets, message keys, cached proposals and
// resumption PSKs. The encoding holds secrets: store it encrypted, and
// delete it when the epoch expires.
func (s *State) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(snapshotVersion)
	s.ctx.MarshalMLS(&b)
	s.tree.Wire().MarshalMLS(&b)
	b.AddUint32(uint32(s.own))
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, x := range sortedNodes(s.priv.Nodes()) {
			b.AddUint32(uint32(x))
			codec.AddOpaque(b, s.priv.Key(x).Bytes())
		}
	})
	codec.AddOpaque(&b, s.signer.Bytes())
	e := s.secrets
	for _, v := range [][]byte{e.SenderDataSecret, e.ExporterSecret, e.ExternalSecret, e.ConfirmationKey,
		e.MembershipKey, e.ResumptionPSK, e.EpochAuthenticator, e.InitSecret} {
		codec.AddOpaque(&b, v)
	}
	s.keys.Tree.MarshalMLS(&b)
	codec.AddOpaque(&b, s.interimTranscriptHash)
	codec.AddOpaque(&b, s.confirmationTag)
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, cp := range s.proposals {
			codec.AddOpaque(b, cp.ref)
			wire.MarshalProposal(b, cp.proposal)
			cp.sender.MarshalMLS(b)
			codec.AddOptional(b, cp.updateKey != nil, func(b *cryptobyte.Builder) { codec.AddOpaque(b, cp.updateKey.Bytes()) })
		}
	})
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, r := range s.resumption {
			b.AddUint64(r.epoch)
			codec.AddOpaque(b, r.secret)
		}
	})
	codec.AddOptional(&b, s.reinit != nil, func(b *cryptobyte.Builder) { s.reinit.MarshalMLS(b) })
	return b.Bytes()
}

func sortedNodes(v []treemath.NodeIndex) []treemath.NodeIndex {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v
}

func malformedSnapshot(what string) error {
	return fmt.Errorf("%w: %s", ErrMalformedSnapshot, what)
}

// Restore decodes a State encoded by MarshalBinary. The tree's structure
// and key uniqueness are checked, and its hash must match the group
// context; signatures are not verified again (the snapshot is this
// member's own).
func Restore(cfg *Config, data []byte) (*State, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	data = append([]byte(nil), data...) // the State must not alias the caller's buffer
	s := cryptobyte.String(data)
	var version uint16
	if !s.ReadUint16(&version) {
		return nil, malformedSnapshot("truncated")
	}
	if version != snapshotVersion {
		return nil, malformedSnapshot(fmt.Sprintf("format version %d", version))
	}
	var ctx wire.GroupContext
	var rt wire.RatchetTree
	var own uint32
	if !ctx.UnmarshalMLS(&s) || !rt.UnmarshalMLS(&s) || !s.ReadUint32(&own) {
		return nil, malformedSnapshot("group context or tree")
	}
	cs := ctx.CipherSuite
	if err := cs.Check(); err != nil {
		return nil, err
	}
	tree, err := ratchettree.FromWire(cs, rt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedSnapshot, err)
	}
	if !bytes.Equal(tree.TreeHash(), ctx.TreeHash) {
		return nil, malformedSnapshot("tree does not match the group context")
	}
	type nodeKey struct {
		x   treemath.NodeIndex
		raw []byte
	}
	var keys []nodeKey
	if !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		var k nodeKey
		var x uint32
		if !s.ReadUint32(&x) || !codec.ReadOpaque(s, &k.raw) {
			return false
		}
		k.x = treemath.NodeIndex(x)
		keys = append(keys, k)
		return true
	}) {
		return nil, malformedSnapshot("private keys")
	}
	var signerRaw []byte
	if !codec.ReadOpaque(&s, &signerRaw) {
		return nil, malformedSnapshot("signer")
	}
	signer, err := cs.ParseSignaturePrivateKey(signerRaw)
	if err != nil {
		return nil, fmt.Errorf("%w: signer: %w", ErrMalformedSnapshot, err)
	}
	me := LeafIndex(own)
	var priv *ratchettree.PrivateKeys
	for _, k := range keys {
		hk, err := cs.ParseHPKEPrivateKey(k.raw)
		if err != nil {
			return nil, fmt.Errorf("%w: node key: %w", ErrMalformedSnapshot, err)
		}
		if k.x == me.Node() {
			priv = ratchettree.NewPrivateKeys(me, hk)
		}
	}
	if priv == nil {
		return nil, malformedSnapshot("no leaf key")
	}
	for _, k := range keys {
		if k.x != me.Node() {
			hk, _ := cs.ParseHPKEPrivateKey(k.raw)
			priv.Set(k.x, hk)
		}
	}
	e := &keyschedule.Epoch{Suite: cs}
	for _, dst := range []*[]byte{&e.SenderDataSecret, &e.ExporterSecret, &e.ExternalSecret, &e.ConfirmationKey,
		&e.MembershipKey, &e.ResumptionPSK, &e.EpochAuthenticator, &e.InitSecret} {
		var v []byte
		if !codec.ReadOpaque(&s, &v) {
			return nil, malformedSnapshot("epoch secrets")
		}
		*dst = append([]byte(nil), v...)
	}
	st, ok := secrettree.Unmarshal(cs, cfg.secretTree(), &s)
	if !ok || st.Leaves() != tree.Leaves() {
		return nil, malformedSnapshot("secret tree")
	}
	state := &State{cfg: cfg, cs: cs, ctx: ctx, tree: tree, own: me, priv: priv, signer: signer, secrets: e,
		keys: &framing.EpochKeys{Suite: cs, SenderDataSecret: e.SenderDataSecret, Tree: st}}
	if state.ctxEnc, err = codec.Marshal(&ctx); err != nil {
		return nil, err
	}
	var interim, tag []byte
	if !codec.ReadOpaque(&s, &interim) || !codec.ReadOpaque(&s, &tag) {
		return nil, malformedSnapshot("transcript")
	}
	state.interimTranscriptHash, state.confirmationTag = append([]byte(nil), interim...), append([]byte(nil), tag...)
	if !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		cp := &cachedProposal{}
		var hasKey bool
		if !codec.ReadOpaque(s, &cp.ref) || !wire.ReadProposal(s, &cp.proposal) || !cp.sender.UnmarshalMLS(s) || !codec.ReadOptional(s, &hasKey) {
			return false
		}
		if hasKey {
			var raw []byte
			if !codec.ReadOpaque(s, &raw) {
				return false
			}
			k, err := cs.ParseHPKEPrivateKey(raw)
			if err != nil {
				return false
			}
			cp.updateKey = k
		}
		cp.ref = append([]byte(nil), cp.ref...)
		state.proposals = append(state.proposals, cp)
		return true
	}) {
		return nil, malformedSnapshot("proposals")
	}
	if !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		var r resumptionPSK
		if !s.ReadUint64(&r.epoch) || !codec.ReadOpaque(s, &r.secret) {
			return false
		}
		r.secret = append([]byte(nil), r.secret...)
		state.resumption = append(state.resumption, r)
		return true
	}) {
		return nil, malformedSnapshot("resumption PSKs")
	}
	var hasReInit bool
	if !codec.ReadOptional(&s, &hasReInit) {
		return nil, malformedSnapshot("reinit")
	}
	if hasReInit {
		state.reinit = new(wire.ReInit)
		if !state.reinit.UnmarshalMLS(&s) {
			return nil, malformedSnapshot("reinit")
		}
	}
	if !s.Empty() {
		return nil, malformedSnapshot("trailing bytes")
	}
	return state, nil
}
