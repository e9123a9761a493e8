package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// Suite is the cipher suite of Identity.Signer, and of every group made
// before groups had a suite of their own (a group record without one).
// Its Ed25519 signature key is also the node's libp2p identity key, which
// binds a member's MLS credential to its peer ID.
const Suite = suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

// SignerFor returns the identity's signature key for a group in cs, one
// of Suites.
func (id *Identity) SignerFor(cs suite.CipherSuite) (*suite.SignaturePrivateKey, error) {
	if cs == id.Signer.Suite() {
		return id.Signer, nil
	}
	if err := checkSuite(cs); err != nil {
		return nil, err
	}
	return cs.ParseSignaturePrivateKey(id.seed)
}

// Identity is a node's long-term identity: one Ed25519 key that is both
// its libp2p key (peer ID) and its MLS signature key, and a display name.
type Identity struct {
	Name   string
	seed   []byte
	PeerID peer.ID
	// Key is the libp2p private key.
	Key crypto.PrivKey
	// Signer is the MLS signature key (the same key).
	Signer *suite.SignaturePrivateKey
}

// ErrBadName reports a display name Parley refuses.
var ErrBadName = errors.New("node: bad display name")

const maxNameLen = 64

// CheckName checks a display name: 1 to 64 bytes of UTF-8, printable, no
// leading or trailing space.
func CheckName(name string) error {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) || strings.TrimSpace(name) != name {
		return fmt.Errorf("%w: %q (1 to %d bytes of text, no leading or trailing space)", ErrBadName, name, maxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %q has a control character", ErrBadName, name)
		}
	}
	return nil
}

// NewIdentity makes a fresh identity with the display name.
func NewIdentity(name string) (*Identity, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return identityFromSeed(name, seed)
}

func identityFromSeed(name string, seed []byte) (*Identity, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("node: identity key of %d bytes", len(seed))
	}
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	signer, err := Suite.ParseSignaturePrivateKey(seed)
	if err != nil {
		return nil, err
	}
	return &Identity{Name: name, seed: append([]byte(nil), seed...), PeerID: id, Key: key, Signer: signer}, nil
}

// encodeIdentity and decodeIdentity store an identity: the key seed then
// the name.
func (id *Identity) encode() []byte { return append(append([]byte(nil), id.seed...), id.Name...) }

func decodeIdentity(b []byte) (*Identity, error) {
	if len(b) < ed25519.SeedSize {
		return nil, errors.New("node: stored identity is truncated")
	}
	return identityFromSeed(string(b[ed25519.SeedSize:]), b[:ed25519.SeedSize])
}

// Credential returns the MLS credential of the identity.
func (id *Identity) Credential() wire.Credential {
	return wire.NewBasicCredential([]byte(MemberID(id.PeerID, id.Name)))
}

// Fingerprint is the identity's safety number.
func (id *Identity) Fingerprint() string { return Fingerprint(id.Signer.PublicKey()) }

// MemberID is the identity string a member has in a group (its MLS basic
// credential): the peer ID, a slash, the display name.
func MemberID(p peer.ID, name string) string { return p.String() + "/" + name }

// ParseMemberID splits a member identity into peer ID and name.
func ParseMemberID(s string) (peer.ID, string, error) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		p, err := peer.Decode(s)
		return p, "", err
	}
	p, err := peer.Decode(s[:i])
	return p, s[i+1:], err
}

// ValidateCredential is the Authentication Service of Parley groups: a
// member's basic credential must be "peerID/name" where the peer ID is the
// one of the member's own signature key, so that nobody can present
// another node's peer ID, and the name a valid display name.
func ValidateCredential(cred *wire.Credential, signatureKey []byte) error {
	if cred == nil {
		return errors.New("node: no credential")
	}
	if cred.Type != wire.CredentialBasic {
		return fmt.Errorf("node: credential type %d (Parley uses basic credentials)", cred.Type)
	}
	p, name, err := ParseMemberID(string(cred.Identity))
	if err != nil {
		return fmt.Errorf("node: credential %q: %w", cred.Identity, err)
	}
	if err := CheckName(name); err != nil {
		return err
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(signatureKey)
	if err != nil {
		return fmt.Errorf("node: signature key: %w", err)
	}
	if !p.MatchesPublicKey(pub) {
		return fmt.Errorf("node: credential names peer %s, but the signature key is another peer's", p)
	}
	return nil
}

// Fingerprint returns the safety number of a signature key: 30 digits in
// six groups of five, from an iterated SHA-512 of the key, which two
// people read to each other to check they see the same keys. The 1,024
// hashes cost about half a millisecond, and every message delivered shows
// its sender's: the last few thousand keys' numbers are kept.
func Fingerprint(signatureKey []byte) string {
	fingerprints.Lock()
	fp, ok := fingerprints.m[string(signatureKey)]
	fingerprints.Unlock()
	if ok {
		return fp
	}
	fp = fingerprint(signatureKey)
	fingerprints.Lock()
	if len(fingerprints.m) >= maxFingerprints {
		clear(fingerprints.m)
	}
	fingerprints.m[string(signatureKey)] = fp
	fingerprints.Unlock()
	return fp
}

// fingerprints holds the safety numbers computed last (at most
// maxFingerprints: they are all dropped when it is full).
var fingerprints = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

const maxFingerprints = 4096

// fingerprint computes Fingerprint: h = label || key, then 1,024 times
// h = SHA-512(h || key).
func fingerprint(signatureKey []byte) string {
	d := sha512.New()
	h := append([]byte("parley fingerprint v1\x00"), signatureKey...)
	buf := make([]byte, 0, sha512.Size)
	for range 1024 {
		d.Reset()
		d.Write(h)
		d.Write(signatureKey)
		h = d.Sum(buf[:0])
	}
	var b strings.Builder
	for i := range 6 {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := binary.BigEndian.Uint64(append([]byte{0, 0, 0}, h[5*i:5*i+5]...)) % 100000
		fmt.Fprintf(&b, "%05d", v)
	}
	return b.String()
}
