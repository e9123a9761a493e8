package server

import (
	"fmt"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// decodeMessage decodes an MLSMessage of the wanted wire format.
func decodeMessage(data []byte, want wire.WireFormat, what string) (*wire.MLSMessage, error) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s is not an MLSMessage: %w", ErrBadRequest, what, err)
	}
	if want != 0 && m.WireFormat != want {
		return nil, fmt.Errorf("%w: %s has wire format %d, want %d", ErrBadRequest, what, m.WireFormat, want)
	}
	return &m, nil
}

// decodeKeyPackage decodes a KeyPackage; a signature key not encoded as
// RFC 9420 says (for ECDSA, an uncompressed point) is refused up front
// with an error that says so.
func decodeKeyPackage(data []byte) (*wire.KeyPackage, error) {
	m, err := decodeMessage(data, wire.WireFormatKeyPackage, "key_package")
	if err != nil {
		return nil, err
	}
	kp := m.KeyPackage
	if err := signatureKeyEncoding(kp.CipherSuite, kp.LeafNode.SignatureKey, "key package's"); err != nil {
		return nil, err
	}
	return kp, nil
}

// signatureKeyEncoding checks that a peer's signature public key has the
// encoding of RFC 9420 for the suite.
func signatureKeyEncoding(cs suite.CipherSuite, key []byte, whose string) error {
	if err := cs.Check(); err != nil {
		return fmt.Errorf("%w: %s suite: %w", ErrBadRequest, whose, err)
	}
	if err := cs.ValidateSignaturePublicKey(key); err != nil {
		return fmt.Errorf("%w: %s signature key is not a %v key as RFC 9420 encodes it (ECDSA: uncompressed point): %w", ErrBadRequest, whose, cs, err)
	}
	return nil
}

func decodeWelcome(data []byte) (*wire.Welcome, error) {
	m, err := decodeMessage(data, wire.WireFormatWelcome, "welcome")
	if err != nil {
		return nil, err
	}
	return m.Welcome, nil
}

func decodeGroupInfo(data []byte) (*wire.GroupInfo, error) {
	m, err := decodeMessage(data, wire.WireFormatGroupInfo, "group_info")
	if err != nil {
		return nil, err
	}
	if err := m.GroupInfo.GroupContext.CipherSuite.Check(); err != nil {
		return nil, fmt.Errorf("%w: group_info: %w", ErrBadRequest, err)
	}
	return m.GroupInfo, nil
}

// decodeTree decodes a ratchet_tree field; empty means none.
func decodeTree(data []byte) (wire.RatchetTree, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var rt wire.RatchetTree
	if err := codec.Unmarshal(data, &rt); err != nil {
		return nil, fmt.Errorf("%w: ratchet_tree: %w", ErrBadRequest, err)
	}
	return rt, nil
}

// encodeMessage wraps a Welcome, GroupInfo or KeyPackage in an MLSMessage
// and encodes it; nil encodes as nothing.
func encodeMessage[T *wire.Welcome | *wire.GroupInfo | *wire.KeyPackage](body T) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	return codec.Marshal(wire.NewMLSMessage(body))
}

func encodeTree(rt wire.RatchetTree) ([]byte, error) { return codec.Marshal(rt) }

// cipherSuite checks a suite field of a request.
func cipherSuite(v uint32) (suite.CipherSuite, error) {
	if v > 0xffff {
		return 0, fmt.Errorf("%w: cipher suite %d", ErrBadRequest, v)
	}
	cs := suite.CipherSuite(v)
	if err := cs.Check(); err != nil {
		return 0, err
	}
	return cs, nil
}

// extensions converts the service's extensions.
func extensions(in []*mlsclient.Extension) (wire.Extensions, error) {
	out := make(wire.Extensions, 0, len(in))
	for _, x := range in {
		if x.ExtensionType > 0xffff {
			return nil, fmt.Errorf("%w: extension type %d", ErrBadRequest, x.ExtensionType)
		}
		t := wire.ExtensionType(x.ExtensionType)
		if out.Has(t) {
			return nil, fmt.Errorf("%w: extension type %d twice", ErrBadRequest, t)
		}
		out = append(out, wire.Extension{Type: t, Data: append([]byte{}, x.ExtensionData...)})
	}
	return out, nil
}

// leafOf finds the member presenting a basic credential with identity.
func leafOf(rt wire.RatchetTree, identity []byte) (uint32, error) {
	for i, n := range rt {
		if n == nil || n.Leaf == nil || i%2 != 0 {
			continue
		}
		c := n.Leaf.Credential
		if c.Type == wire.CredentialBasic && string(c.Identity) == string(identity) {
			return uint32(i / 2), nil
		}
	}
	return 0, fmt.Errorf("%w: no member with identity %q", ErrBadRequest, identity)
}
