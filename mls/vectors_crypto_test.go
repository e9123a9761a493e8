package mls_test

import (
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
)

func TestVectorsTreeMath(t *testing.T) {
	type vector struct {
		NLeaves uint32    `json:"n_leaves"`
		NNodes  uint32    `json:"n_nodes"`
		Root    uint32    `json:"root"`
		Left    []*uint32 `json:"left"`
		Right   []*uint32 `json:"right"`
		Parent  []*uint32 `json:"parent"`
		Sibling []*uint32 `json:"sibling"`
	}
	forEachVector(t, "tree-math.json", func(t *testing.T, v *vector) {
		if got := treemath.Width(v.NLeaves); got != v.NNodes {
			t.Errorf("Width(%d) = %d, want %d", v.NLeaves, got, v.NNodes)
		}
		if got := treemath.Root(v.NLeaves); uint32(got) != v.Root {
			t.Errorf("Root(%d) = %d, want %d", v.NLeaves, got, v.Root)
		}
		check := func(name string, want []*uint32, f func(treemath.NodeIndex) (treemath.NodeIndex, bool)) {
			if len(want) != int(v.NNodes) {
				t.Fatalf("%s has %d entries, want %d", name, len(want), v.NNodes)
			}
			for i, w := range want {
				got, ok := f(treemath.NodeIndex(i))
				switch {
				case w == nil && ok:
					t.Errorf("%s(%d) = %d, want none", name, i, got)
				case w != nil && !ok:
					t.Errorf("%s(%d) = none, want %d", name, i, *w)
				case w != nil && uint32(got) != *w:
					t.Errorf("%s(%d) = %d, want %d", name, i, got, *w)
				}
			}
		}
		check("left", v.Left, treemath.Left)
		check("right", v.Right, treemath.Right)
		check("parent", v.Parent, func(x treemath.NodeIndex) (treemath.NodeIndex, bool) { return treemath.Parent(x, v.NLeaves) })
		check("sibling", v.Sibling, func(x treemath.NodeIndex) (treemath.NodeIndex, bool) { return treemath.Sibling(x, v.NLeaves) })
	})
}

func TestVectorsCryptoBasics(t *testing.T) {
	type vector struct {
		CipherSuite suite.CipherSuite `json:"cipher_suite"`
		RefHash     struct {
			Label string   `json:"label"`
			Value hexBytes `json:"value"`
			Out   hexBytes `json:"out"`
		} `json:"ref_hash"`
		ExpandWithLabel struct {
			Secret  hexBytes `json:"secret"`
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  uint16   `json:"length"`
			Out     hexBytes `json:"out"`
		} `json:"expand_with_label"`
		DeriveSecret struct {
			Secret hexBytes `json:"secret"`
			Label  string   `json:"label"`
			Out    hexBytes `json:"out"`
		} `json:"derive_secret"`
		DeriveTreeSecret struct {
			Secret     hexBytes `json:"secret"`
			Label      string   `json:"label"`
			Generation uint32   `json:"generation"`
			Length     uint16   `json:"length"`
			Out        hexBytes `json:"out"`
		} `json:"derive_tree_secret"`
		SignWithLabel struct {
			Priv      hexBytes `json:"priv"`
			Pub       hexBytes `json:"pub"`
			Content   hexBytes `json:"content"`
			Label     string   `json:"label"`
			Signature hexBytes `json:"signature"`
		} `json:"sign_with_label"`
		EncryptWithLabel struct {
			Priv       hexBytes `json:"priv"`
			Pub        hexBytes `json:"pub"`
			Label      string   `json:"label"`
			Context    hexBytes `json:"context"`
			Plaintext  hexBytes `json:"plaintext"`
			KEMOutput  hexBytes `json:"kem_output"`
			Ciphertext hexBytes `json:"ciphertext"`
		} `json:"encrypt_with_label"`
	}
	forEachVector(t, "crypto-basics.json", func(t *testing.T, v *vector) {
		cs := v.CipherSuite
		if err := cs.Check(); err != nil {
			t.Fatal(err)
		}
		checkBytes(t, "RefHash", cs.RefHash(v.RefHash.Label, v.RefHash.Value), v.RefHash.Out)

		e := v.ExpandWithLabel
		out, err := cs.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length)
		if err != nil {
			t.Fatalf("ExpandWithLabel: %v", err)
		}
		checkBytes(t, "ExpandWithLabel", out, e.Out)

		checkBytes(t, "DeriveSecret", cs.DeriveSecret(v.DeriveSecret.Secret, v.DeriveSecret.Label), v.DeriveSecret.Out)

		d := v.DeriveTreeSecret
		out, err = cs.DeriveTreeSecret(d.Secret, d.Label, d.Generation, d.Length)
		if err != nil {
			t.Fatalf("DeriveTreeSecret: %v", err)
		}
		checkBytes(t, "DeriveTreeSecret", out, d.Out)

		s := v.SignWithLabel
		if err := cs.VerifyWithLabel(s.Pub, s.Label, s.Content, s.Signature); err != nil {
			t.Errorf("VerifyWithLabel(vector signature): %v", err)
		}
		key, err := cs.ParseSignaturePrivateKey(s.Priv)
		if err != nil {
			t.Fatalf("ParseSignaturePrivateKey: %v", err)
		}
		checkBytes(t, "signature public key", key.PublicKey(), s.Pub)
		sig, err := cs.SignWithLabel(key, s.Label, s.Content, nil)
		if err != nil {
			t.Fatalf("SignWithLabel: %v", err)
		}
		if err := cs.VerifyWithLabel(s.Pub, s.Label, s.Content, sig); err != nil {
			t.Errorf("VerifyWithLabel(own signature): %v", err)
		}
		if err := cs.VerifyWithLabel(s.Pub, s.Label+"x", s.Content, sig); err == nil {
			t.Errorf("VerifyWithLabel accepted a signature under another label")
		}

		h := v.EncryptWithLabel
		priv, err := cs.ParseHPKEPrivateKey(h.Priv)
		if err != nil {
			t.Fatalf("ParseHPKEPrivateKey: %v", err)
		}
		checkBytes(t, "HPKE public key", priv.PublicKey(), h.Pub)
		pt, err := cs.DecryptWithLabel(priv, h.Label, h.Context, h.KEMOutput, h.Ciphertext)
		if err != nil {
			t.Fatalf("DecryptWithLabel(vector): %v", err)
		}
		checkBytes(t, "DecryptWithLabel(vector)", pt, h.Plaintext)
		kem, ct, err := cs.EncryptWithLabel(h.Pub, h.Label, h.Context, h.Plaintext, nil)
		if err != nil {
			t.Fatalf("EncryptWithLabel: %v", err)
		}
		pt, err = cs.DecryptWithLabel(priv, h.Label, h.Context, kem, ct)
		if err != nil {
			t.Fatalf("DecryptWithLabel(own): %v", err)
		}
		checkBytes(t, "DecryptWithLabel(own)", pt, h.Plaintext)
	})
}

func TestVectorsDeserialization(t *testing.T) {
	type vector struct {
		Header hexBytes `json:"vlbytes_header"`
		Length uint64   `json:"length"`
	}
	forEachVector(t, "deserialization.json", func(t *testing.T, v *vector) {
		s := cryptobyte.String(v.Header)
		var n uint64
		if !codec.ReadVarint(&s, &n) {
			t.Fatalf("ReadVarint(%x) failed", []byte(v.Header))
		}
		if !s.Empty() {
			t.Errorf("ReadVarint(%x) left %d bytes", []byte(v.Header), len(s))
		}
		if n != v.Length {
			t.Errorf("ReadVarint(%x) = %d, want %d", []byte(v.Header), n, v.Length)
		}
		var b cryptobyte.Builder
		codec.AddVarint(&b, n)
		checkBytes(t, "AddVarint", b.BytesOrPanic(), v.Header)
	})
}
