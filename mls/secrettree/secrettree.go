// Package secrettree implements the MLS secret tree and its per-sender hash
// ratchets (RFC 9420, §9), with the deletion schedule of §9.2.
//
// Secrets are derived lazily: a node's secret is derived when a leaf below
// it is first used, and each secret is overwritten as soon as its children
// (or, for a ratchet, its key, nonce and successor) have been derived. A
// receiver keeps the keys of generations it skipped, up to a window, so that
// messages arriving out of order still decrypt; a message may not claim a
// generation further ahead than MaxForwardDistance, and checking that costs
// nothing.
package secrettree

import (
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
)

// RatchetType selects one of a leaf's two ratchets.
type RatchetType uint8

// The two ratchets of each leaf (§9.1).
const (
	Handshake RatchetType = iota
	Application
)

func (r RatchetType) label() string {
	if r == Handshake {
		return "handshake"
	}
	return "application"
}

// Config bounds the work and memory a sender can impose on a receiver.
type Config struct {
	// OutOfOrderWindow is how many skipped keys each ratchet keeps for
	// late messages. The oldest are deleted first.
	OutOfOrderWindow uint32
	// MaxForwardDistance is how many generations a message may skip ahead
	// of the next expected one.
	MaxForwardDistance uint32
}

// DefaultConfig is the configuration used when none is given.
// MaxForwardDistance leaves room for a sender restored from snapshots
// several times in a row while a receiver could not hear it (each restore
// jumps 64 generations; see ordering's restoreSkip): deriving 4,096
// generations forward costs a few milliseconds. (Parley's ordering layer
// keeps a wider window: see ordering.SecretTreeConfig.)
var DefaultConfig = Config{OutOfOrderWindow: 128, MaxForwardDistance: 4096}

// KeyNonce is the AEAD key and nonce of one ratchet generation.
type KeyNonce struct {
	Generation uint32
	Key        []byte
	Nonce      []byte
}

func (k *KeyNonce) destroy() {
	clear(k.Key)
	clear(k.Nonce)
}

// ratchet is one hash ratchet (§9.1).
type ratchet struct {
	secret  []byte // ratchet_secret of generation next
	next    uint32
	skipped map[uint32]KeyNonce // keys of skipped generations, for late messages
	order   []uint32            // generations in skipped, oldest first
}

// Tree is the secret tree of one epoch.
type Tree struct {
	cs       suite.CipherSuite
	cfg      Config
	leaves   uint32
	nodes    map[treemath.NodeIndex][]byte // derived, not yet consumed node secrets
	ratchets map[ratchetID]*ratchet
}

type ratchetID struct {
	leaf treemath.LeafIndex
	typ  RatchetType
}

// New returns the secret tree of a group with nLeaves leaves whose root
// secret is encryptionSecret. The tree copies encryptionSecret; the caller
// should delete its copy.
func New(cs suite.CipherSuite, encryptionSecret []byte, nLeaves uint32, cfg Config) *Tree {
	t := &Tree{
		cs:       cs,
		cfg:      cfg,
		leaves:   nLeaves,
		nodes:    make(map[treemath.NodeIndex][]byte),
		ratchets: make(map[ratchetID]*ratchet),
	}
	if nLeaves > 0 {
		t.nodes[treemath.Root(nLeaves)] = append([]byte(nil), encryptionSecret...)
	}
	return t
}

// Leaves returns the number of leaves of the tree.
func (t *Tree) Leaves() uint32 { return t.leaves }

// leafDerivation is the result of deriving a leaf's secret without yet
// changing the tree: the node secrets to store and the ones consumed.
type leafDerivation struct {
	secret   []byte
	store    map[treemath.NodeIndex][]byte
	consumed []treemath.NodeIndex
}

// deriveLeaf derives tree_node_[leaf]_secret from the lowest ancestor whose
// secret is held, without changing the tree; apply commits the result.
func (t *Tree) deriveLeaf(leaf treemath.LeafIndex) (*leafDerivation, error) {
	target := leaf.Node()
	path := append([]treemath.NodeIndex{target}, treemath.DirectPath(target, t.leaves)...)
	start := -1
	for i, n := range path {
		if _, ok := t.nodes[n]; ok {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, ErrSecretConsumed
	}
	d := &leafDerivation{store: map[treemath.NodeIndex][]byte{}}
	secret := t.nodes[path[start]]
	d.consumed = append(d.consumed, path[start])
	for i := start; i > 0; i-- {
		n := path[i]
		left, _ := treemath.Left(n)
		right, _ := treemath.Right(n)
		ls, err := t.cs.ExpandWithLabel(secret, "tree", []byte("left"), uint16(t.cs.Nh()))
		if err != nil {
			return nil, err
		}
		rs, err := t.cs.ExpandWithLabel(secret, "tree", []byte("right"), uint16(t.cs.Nh()))
		if err != nil {
			return nil, err
		}
		if i != start {
			clear(secret) // an intermediate secret of this derivation
		}
		next, other, otherNode := ls, rs, right
		if path[i-1] == right {
			next, other, otherNode = rs, ls, left
		}
		d.store[otherNode] = other
		secret = next
	}
	if start == 0 {
		secret = append([]byte(nil), secret...)
	}
	d.secret = secret
	return d, nil
}

// apply commits a derivation: consumed secrets are overwritten and
// deleted, the siblings' secrets stored.
func (t *Tree) apply(d *leafDerivation) {
	for _, n := range d.consumed {
		clear(t.nodes[n])
		delete(t.nodes, n)
	}
	for n, s := range d.store {
		t.nodes[n] = s
	}
}

// discard overwrites the secrets of a derivation that is not applied.
func (d *leafDerivation) discard() {
	for _, s := range d.store {
		clear(s)
	}
	clear(d.secret)
}

// leafRatchets derives the two ratchets of a leaf from its secret.
func (t *Tree) leafRatchets(leaf treemath.LeafIndex, secret []byte) (map[RatchetType]*ratchet, error) {
	out := make(map[RatchetType]*ratchet, 2)
	for _, rt := range []RatchetType{Handshake, Application} {
		s, err := t.cs.ExpandWithLabel(secret, rt.label(), nil, uint16(t.cs.Nh()))
		if err != nil {
			return nil, err
		}
		out[rt] = &ratchet{secret: s}
	}
	return out, nil
}

// ratchet returns the ratchet of (leaf, typ). When the leaf has none yet,
// they are derived and, if commit is true, stored; otherwise the caller
// gets a pending set to store with commitPending once it is sure.
func (t *Tree) ratchet(leaf treemath.LeafIndex, typ RatchetType) (*ratchet, *pendingLeaf, error) {
	if uint32(leaf) >= t.leaves {
		return nil, nil, ErrLeafOutOfRange
	}
	if r, ok := t.ratchets[ratchetID{leaf, typ}]; ok {
		return r, nil, nil
	}
	d, err := t.deriveLeaf(leaf)
	if err != nil {
		return nil, nil, err
	}
	rs, err := t.leafRatchets(leaf, d.secret)
	clear(d.secret)
	if err != nil {
		d.discard()
		return nil, nil, err
	}
	p := &pendingLeaf{leaf: leaf, derivation: d, ratchets: rs}
	return rs[typ], p, nil
}

// pendingLeaf holds a leaf's newly derived ratchets until they are kept.
type pendingLeaf struct {
	leaf       treemath.LeafIndex
	derivation *leafDerivation
	ratchets   map[RatchetType]*ratchet
}

func (t *Tree) keepLeaf(p *pendingLeaf) {
	if p == nil {
		return
	}
	t.apply(p.derivation)
	for rt, r := range p.ratchets {
		t.ratchets[ratchetID{p.leaf, rt}] = r
	}
}

func (p *pendingLeaf) discard() {
	if p == nil {
		return
	}
	p.derivation.discard()
	for _, r := range p.ratchets {
		clear(r.secret)
	}
}

// derive computes the key and nonce of generation gen from its ratchet
// secret, and the ratchet secret of gen+1.
func (t *Tree) derive(secret []byte, gen uint32) (KeyNonce, []byte, error) {
	key, err := t.cs.DeriveTreeSecret(secret, "key", gen, uint16(t.cs.Nk()))
	if err != nil {
		return KeyNonce{}, nil, err
	}
	nonce, err := t.cs.DeriveTreeSecret(secret, "nonce", gen, uint16(t.cs.Nn()))
	if err != nil {
		return KeyNonce{}, nil, err
	}
	next, err := t.cs.DeriveTreeSecret(secret, "secret", gen, uint16(t.cs.Nh()))
	if err != nil {
		return KeyNonce{}, nil, err
	}
	return KeyNonce{Generation: gen, Key: key, Nonce: nonce}, next, nil
}

// Next returns the key and nonce for the next message the leaf sends on
// the ratchet, and advances the ratchet past it. The caller must delete the
// key when done with it.
func (t *Tree) Next(leaf treemath.LeafIndex, typ RatchetType) (KeyNonce, error) {
	r, pending, err := t.ratchet(leaf, typ)
	if err != nil {
		return KeyNonce{}, err
	}
	t.keepLeaf(pending)
	if r.next == ^uint32(0) {
		return KeyNonce{}, ErrGenerationExhausted
	}
	kn, next, err := t.derive(r.secret, r.next)
	if err != nil {
		return KeyNonce{}, err
	}
	clear(r.secret)
	r.secret = next
	r.next++
	return kn, nil
}

// Skip advances the leaf's ratchet by n generations without keeping the
// skipped keys. A member restored from a snapshot skips its own sending
// ratchets so that it never reuses a generation it may have used after
// the snapshot was taken (a key and nonce used twice).
func (t *Tree) Skip(leaf treemath.LeafIndex, typ RatchetType, n uint32) error {
	r, pending, err := t.ratchet(leaf, typ)
	if err != nil {
		return err
	}
	t.keepLeaf(pending)
	for range n {
		if r.next == ^uint32(0) {
			return ErrGenerationExhausted
		}
		kn, next, err := t.derive(r.secret, r.next)
		if err != nil {
			return err
		}
		kn.destroy()
		clear(r.secret)
		r.secret = next
		r.next++
	}
	return nil
}

// Open finds the key and nonce of generation gen of the leaf's ratchet and
// passes them to open. Only if open returns nil is the key consumed and
// deleted, and the ratchet advanced past it (keeping the keys of skipped
// generations within the window); otherwise the tree is unchanged. This
// way a message that fails to decrypt cannot disturb the ratchet.
func (t *Tree) Open(leaf treemath.LeafIndex, typ RatchetType, gen uint32, open func(key, nonce []byte) error) error {
	// Refuse generations too far ahead before deriving anything.
	next := uint32(0)
	if r, ok := t.ratchets[ratchetID{leaf, typ}]; ok {
		next = r.next
	}
	if gen >= next && (gen-next > t.cfg.MaxForwardDistance || gen == ^uint32(0)) {
		return ErrTooFarAhead
	}
	r, pending, err := t.ratchet(leaf, typ)
	if err != nil {
		return err
	}
	if err := t.open(r, gen, open); err != nil {
		pending.discard()
		return err
	}
	t.keepLeaf(pending)
	return nil
}

func (t *Tree) open(r *ratchet, gen uint32, open func(key, nonce []byte) error) error {
	if gen < r.next {
		kn, ok := r.skipped[gen]
		if !ok {
			return ErrSecretConsumed
		}
		if err := open(kn.Key, kn.Nonce); err != nil {
			return err
		}
		kn.destroy()
		delete(r.skipped, gen)
		for i, g := range r.order {
			if g == gen {
				r.order = append(r.order[:i], r.order[i+1:]...)
				break
			}
		}
		return nil
	}
	if gen-r.next > t.cfg.MaxForwardDistance || gen == ^uint32(0) {
		return ErrTooFarAhead
	}
	// Derive forward on copies so that a failed open leaves r unchanged.
	secret := r.secret
	var skipped []KeyNonce
	var kn KeyNonce
	for g := r.next; ; g++ {
		k, next, err := t.derive(secret, g)
		if secret != nil && g != r.next {
			clear(secret)
		}
		if err != nil {
			return err
		}
		secret = next
		if g == gen {
			kn = k
			break
		}
		skipped = append(skipped, k)
	}
	if err := open(kn.Key, kn.Nonce); err != nil {
		clear(secret)
		kn.destroy()
		for i := range skipped {
			skipped[i].destroy()
		}
		return err
	}
	kn.destroy()
	clear(r.secret)
	r.secret = secret
	r.next = gen + 1
	// A jump wider than the window keeps the keys at both of its ends and
	// drops the middle: the messages still in flight are those sent just
	// before the jump (a sender restored from a snapshot skips hundreds
	// of generations at once) and those just before the one opened (an
	// ordinary reordering).
	if w := int(t.cfg.OutOfOrderWindow); len(skipped) > w {
		low, high := w-w/2, w/2
		for i := low; i < len(skipped)-high; i++ {
			skipped[i].destroy()
		}
		skipped = append(skipped[:low], skipped[len(skipped)-high:]...)
	}
	for _, k := range skipped {
		t.keep(r, k)
	}
	return nil
}

// keep stores a skipped key, deleting the oldest beyond the window.
func (t *Tree) keep(r *ratchet, k KeyNonce) {
	if t.cfg.OutOfOrderWindow == 0 {
		k.destroy()
		return
	}
	if r.skipped == nil {
		r.skipped = make(map[uint32]KeyNonce)
	}
	r.skipped[k.Generation] = k
	r.order = append(r.order, k.Generation)
	for uint32(len(r.order)) > t.cfg.OutOfOrderWindow {
		old := r.order[0]
		r.order = r.order[1:]
		if kn, ok := r.skipped[old]; ok {
			kn.destroy()
			delete(r.skipped, old)
		}
	}
}

// Destroy overwrites every secret the tree holds.
func (t *Tree) Destroy() {
	for n, s := range t.nodes {
		clear(s)
		delete(t.nodes, n)
	}
	for id, r := range t.ratchets {
		clear(r.secret)
		for _, k := range r.skipped {
			k.destroy()
		}
		delete(t.ratchets, id)
	}
}
