package server

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// Signature keys travel as RFC 9420 encodes them: EdDSA public keys and
// seeds as they are, ECDSA public keys as uncompressed SEC1 points and
// private keys as the big-endian scalar of the curve's size.
func TestSignatureKeysUseTheRFCEncodings(t *testing.T) {
	for _, tc := range []struct {
		suite         uint32
		priv, pub     int
		uncompressed  bool
		scalarOrSeeds string
	}{
		{1, 32, 32, false, "Ed25519 seed"},
		{2, 32, 65, true, "P-256 scalar"},
		{3, 32, 32, false, "Ed25519 seed"},
		{4, 57, 57, false, "Ed448 seed"},
		{5, 66, 133, true, "P-521 scalar"},
		{6, 57, 57, false, "Ed448 seed"},
		{7, 48, 97, true, "P-384 scalar"},
	} {
		s := New()
		kp := must(s.CreateKeyPackage(ctx, &mlsclient.CreateKeyPackageRequest{CipherSuite: tc.suite, Identity: []byte("x")})).ok(t)
		if len(kp.SignaturePriv) != tc.priv {
			t.Errorf("suite %d: signature_priv of %d bytes, want the %d-byte %s", tc.suite, len(kp.SignaturePriv), tc.priv, tc.scalarOrSeeds)
		}
		m, err := decodeMessage(kp.KeyPackage, wire.WireFormatKeyPackage, "key_package")
		if err != nil {
			t.Fatal(err)
		}
		pub := m.KeyPackage.LeafNode.SignatureKey
		if len(pub) != tc.pub || tc.uncompressed && pub[0] != 4 {
			t.Errorf("suite %d: signature key of %d bytes starting %#x", tc.suite, len(pub), pub[0])
		}
	}
}

// compress returns the compressed SEC1 form of an uncompressed point.
func compress(p []byte) []byte {
	n := (len(p) - 1) / 2
	x, y := p[1:1+n], p[1+n:]
	return append([]byte{2 | y[n-1]&1}, x...)
}

func refusedForEncoding(err error) bool {
	return status.Code(err) == codes.InvalidArgument && strings.Contains(err.Error(), "as RFC 9420 encodes it")
}

// A peer's ECDSA signature key that is not an uncompressed point (the
// only encoding RFC 9420 allows), in an external sender or a KeyPackage,
// is refused with an error that says so.
func TestCompressedECDSAKeysFromPeersAreRefusedClearly(t *testing.T) {
	for _, cs := range []uint32{2, 5, 7} {
		s := New()
		group := must(s.CreateGroup(ctx, &mlsclient.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: cs, Identity: []byte("alice")})).ok(t).StateId
		signer := must(s.CreateExternalSigner(ctx, &mlsclient.CreateExternalSignerRequest{CipherSuite: cs, Identity: []byte("ds")})).ok(t)
		if _, err := s.AddExternalSigner(ctx, &mlsclient.AddExternalSignerRequest{StateId: group, ExternalSender: signer.ExternalSender}); err != nil {
			t.Fatalf("suite %d: uncompressed key refused: %v", cs, err)
		}
		var e externalSenderEntry
		if err := codec.Unmarshal(signer.ExternalSender, &e); err != nil {
			t.Fatal(err)
		}
		e.SignatureKey = compress(e.SignatureKey)
		_, err := s.AddExternalSigner(ctx, &mlsclient.AddExternalSignerRequest{StateId: group, ExternalSender: codec.MustMarshal(&e)})
		if !refusedForEncoding(err) {
			t.Errorf("suite %d: external sender with a compressed key: %v, want InvalidArgument naming the encoding", cs, err)
		}

		kp := must(s.CreateKeyPackage(ctx, &mlsclient.CreateKeyPackageRequest{CipherSuite: cs, Identity: []byte("bob")})).ok(t)
		m, err := decodeMessage(kp.KeyPackage, wire.WireFormatKeyPackage, "key_package")
		if err != nil {
			t.Fatal(err)
		}
		m.KeyPackage.LeafNode.SignatureKey = compress(m.KeyPackage.LeafNode.SignatureKey)
		_, err = s.AddProposal(ctx, &mlsclient.AddProposalRequest{StateId: group, KeyPackage: codec.MustMarshal(m)})
		if !refusedForEncoding(err) {
			t.Errorf("suite %d: key package with a compressed key: %v, want InvalidArgument naming the encoding", cs, err)
		}
	}
}

func TestUnknownIDsAreNotFoundAndFreedIDsAreForgotten(t *testing.T) {
	s := New()
	id := must(s.CreateGroup(ctx, &mlsclient.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: 1, Identity: []byte("alice")})).ok(t).StateId
	tx := must(s.CreateKeyPackage(ctx, &mlsclient.CreateKeyPackageRequest{CipherSuite: 1, Identity: []byte("bob")})).ok(t).TransactionId
	if id == tx {
		t.Fatal("a state and a transaction share an id")
	}
	must(s.StorePSK(ctx, &mlsclient.StorePSKRequest{StateOrTransactionId: tx, PskId: []byte("p"), PskSecret: []byte("s")})).ok(t)
	must(s.Free(ctx, &mlsclient.FreeRequest{StateId: id})).ok(t)
	for name, call := range map[string]func() error{
		"StateAuth": func() error { _, err := s.StateAuth(ctx, &mlsclient.StateAuthRequest{StateId: id}); return err },
		"Protect":   func() error { _, err := s.Protect(ctx, &mlsclient.ProtectRequest{StateId: id}); return err },
		"Free":      func() error { _, err := s.Free(ctx, &mlsclient.FreeRequest{StateId: id}); return err },
		"StorePSK": func() error {
			_, err := s.StorePSK(ctx, &mlsclient.StorePSKRequest{StateOrTransactionId: 999})
			return err
		},
		"JoinGroup": func() error { _, err := s.JoinGroup(ctx, &mlsclient.JoinGroupRequest{TransactionId: id}); return err },
		"ReInitWelcome": func() error {
			_, err := s.ReInitWelcome(ctx, &mlsclient.ReInitWelcomeRequest{ReinitId: tx})
			return err
		},
	} {
		if status.Code(call()) != codes.NotFound {
			t.Errorf("%s with an unknown id: %v, want NotFound", name, call())
		}
	}
}

func TestRequestsForUnsupportedSuitesAreInvalid(t *testing.T) {
	s := New()
	for _, cs := range []uint32{0, 8, 0x10000} {
		_, err := s.CreateGroup(ctx, &mlsclient.CreateGroupRequest{GroupId: []byte("g"), CipherSuite: cs, Identity: []byte("a")})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("suite %d: %v, want InvalidArgument", cs, err)
		}
	}
	got := must(s.SupportedCiphersuites(ctx, &mlsclient.SupportedCiphersuitesRequest{})).ok(t).Ciphersuites
	want := make([]uint32, len(suite.All))
	for i, cs := range suite.All {
		want[i] = uint32(cs)
	}
	if !slices.Equal(got, want) {
		t.Errorf("supported suites %v, want %v", got, want)
	}
	if n := must(s.Name(ctx, &mlsclient.NameRequest{})).ok(t).Name; n != "parley" {
		t.Errorf("name %q", n)
	}
}
