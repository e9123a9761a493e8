package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
)

// Every decoder has a fuzz target: no input may panic, and any input that
// decodes must re-encode to exactly the same bytes. The seed corpus comes
// from the official vectors kept in ../testdata/vectors.

// vectorSeeds returns the hex strings found under the given JSON keys in
// the named vector file (searched recursively).
func vectorSeeds(f *testing.F, file string, keys ...string) [][]byte {
	f.Helper()
	raw, err := os.ReadFile("../testdata/vectors/" + file + ".gz")
	if err != nil {
		f.Fatalf("reading seeds: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		f.Fatal(err)
	}
	raw, err = io.ReadAll(zr)
	if err != nil {
		f.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		f.Fatal(err)
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var out [][]byte
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && want[k] {
					if b, err := hex.DecodeString(s); err == nil && len(out) < 64 {
						out = append(out, b)
					}
				}
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

type codecValue interface {
	codec.Marshaler
	codec.Unmarshaler
}

func fuzzRoundTrip(f *testing.F, newValue func() codecValue, seeds ...[][]byte) {
	for _, set := range seeds {
		for _, s := range set {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := newValue()
		if codec.Unmarshal(data, v) != nil {
			return
		}
		got, err := codec.Marshal(v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, data)
		}
	})
}

func FuzzMLSMessage(f *testing.F) {
	fuzzRoundTrip(f, func() codecValue { return new(MLSMessage) },
		vectorSeeds(f, "messages.json", "mls_welcome", "mls_group_info", "mls_key_package",
			"public_message_application", "public_message_proposal", "public_message_commit", "private_message"),
		vectorSeeds(f, "passive-client-welcome.json", "welcome", "commit", "key_package"),
		selfRemoveSeeds())
}

// selfRemoveSeeds are messages with a SelfRemove proposal, which the
// official vectors do not have: the proposal in a PublicMessage, and a
// commit that refers to it.
func selfRemoveSeeds() [][]byte {
	content := FramedContent{
		GroupID: []byte("group"), Epoch: 3, Sender: MemberSender(1),
		ContentType: ContentProposal, Proposal: &SelfRemove{},
	}
	proposal := NewMLSMessage(&PublicMessage{
		Content: content, Auth: FramedContentAuthData{Signature: make([]byte, 64)}, MembershipTag: make([]byte, 32),
	})
	content.Sender, content.ContentType, content.Proposal = MemberSender(0), ContentCommit, nil
	content.Commit = &Commit{Proposals: []ProposalOrRef{{Reference: make([]byte, 32)}}}
	commit := NewMLSMessage(&PublicMessage{
		Content: content,
		Auth:    FramedContentAuthData{Signature: make([]byte, 64), ConfirmationTag: make([]byte, 32)}, MembershipTag: make([]byte, 32),
	})
	return [][]byte{codec.MustMarshal(proposal), codec.MustMarshal(commit)}
}

func FuzzRatchetTree(f *testing.F) {
	fuzzRoundTrip(f, func() codecValue { return new(RatchetTree) },
		vectorSeeds(f, "messages.json", "ratchet_tree"),
		vectorSeeds(f, "tree-validation.json", "tree"))
}

func FuzzGroupSecrets(f *testing.F) {
	fuzzRoundTrip(f, func() codecValue { return new(GroupSecrets) }, vectorSeeds(f, "messages.json", "group_secrets"))
}

func FuzzProposal(f *testing.F) {
	fuzzRoundTrip(f, func() codecValue { return new(ProposalMessage) },
		vectorSeeds(f, "message-protection.json", "proposal"),
		vectorSeeds(f, "tree-operations.json", "proposal"),
		[][]byte{codec.MustMarshal(&ProposalMessage{Proposal: &SelfRemove{}}), {0x00, 0x0a, 0xff}})
}

func FuzzProposalBodies(f *testing.F) {
	seeds := vectorSeeds(f, "messages.json", "add_proposal", "update_proposal", "remove_proposal",
		"pre_shared_key_proposal", "re_init_proposal", "external_init_proposal", "group_context_extensions_proposal")
	seeds = append(seeds, nil) // SelfRemove's empty body
	for _, s := range seeds {
		for typ := byte(1); typ <= 8; typ++ {
			f.Add(append([]byte{typ}, s...))
		}
	}
	// The first byte selects the body type; the rest is the body.
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		var v codecValue
		switch data[0] % 8 {
		case 0:
			v = new(Add)
		case 1:
			v = new(Update)
		case 2:
			v = new(Remove)
		case 3:
			v = new(PreSharedKey)
		case 4:
			v = new(ReInit)
		case 5:
			v = new(ExternalInit)
		case 6:
			v = new(GroupContextExtensions)
		case 7:
			v = new(SelfRemove)
		}
		body := data[1:]
		if codec.Unmarshal(body, v) != nil {
			return
		}
		if got := codec.MustMarshal(v); !bytes.Equal(got, body) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, body)
		}
	})
}

func FuzzCommit(f *testing.F) {
	selfRemove := Commit{Proposals: []ProposalOrRef{{Reference: make([]byte, 32)}, {Proposal: &SelfRemove{}}}}
	fuzzRoundTrip(f, func() codecValue { return new(Commit) },
		vectorSeeds(f, "messages.json", "commit"),
		vectorSeeds(f, "message-protection.json", "commit"),
		[][]byte{codec.MustMarshal(&selfRemove)})
}

func FuzzAuthenticatedContent(f *testing.F) {
	fuzzRoundTrip(f, func() codecValue { return new(AuthenticatedContent) },
		vectorSeeds(f, "transcript-hashes.json", "authenticated_content"))
}

func FuzzKeyPackageAndLeaf(f *testing.F) {
	seeds := vectorSeeds(f, "passive-client-welcome.json", "key_package")
	for _, s := range seeds {
		f.Add(s)
	}
	// GREASE values (§13.5) in every place they may appear.
	greased := KeyPackage{
		Version: MLS10, CipherSuite: 1, InitKey: make([]byte, 32),
		LeafNode: LeafNode{
			EncryptionKey: make([]byte, 32), SignatureKey: make([]byte, 32),
			Credential: NewBasicCredential([]byte("grease")),
			Capabilities: Capabilities{
				Versions: []ProtocolVersion{MLS10}, CipherSuites: []suite.CipherSuite{0x2A2A, 1},
				Extensions: []ExtensionType{0x1A1A, 0xEAEA}, Proposals: []ProposalType{0x4A4A},
				Credentials: []CredentialType{CredentialBasic, 0x5A5A},
			},
			Source: LeafNodeSourceKeyPackage, Lifetime: Lifetime{NotAfter: 1 << 40},
			Extensions: Extensions{{Type: 0x1A1A}}, Signature: make([]byte, 64),
		},
		Extensions: Extensions{{Type: 0x3A3A, Data: []byte{1, 2, 3}}}, Signature: make([]byte, 64),
	}
	f.Add(codec.MustMarshal(&greased))
	f.Add(codec.MustMarshal(&greased.LeafNode))
	f.Add(codec.MustMarshal(&greased.LeafNode.Capabilities))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []codecValue{new(KeyPackage), new(LeafNode), new(UpdatePath), new(GroupInfo), new(GroupContext), new(Welcome), new(Credential), new(Capabilities), new(Extensions)} {
			if codec.Unmarshal(data, v) != nil {
				continue
			}
			if got := codec.MustMarshal(v); !bytes.Equal(got, data) {
				t.Fatalf("%T re-encoding differs:\n got %x\nwant %x", v, got, data)
			}
		}
	})
}

func FuzzPrivateMessageContent(f *testing.F) {
	for _, s := range vectorSeeds(f, "message-protection.json", "proposal", "commit", "application") {
		for ct := byte(1); ct <= 3; ct++ {
			f.Add(ct, append(append([]byte{}, s...), 0, 0, 0, 0))
		}
	}
	f.Fuzz(func(t *testing.T, ct byte, data []byte) {
		v := &PrivateMessageContent{ContentType: ContentType(ct)}
		s := cryptobyte.String(data)
		if !v.UnmarshalMLS(&s) || !s.Empty() {
			return
		}
		if got := codec.MustMarshal(v); !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, data)
		}
	})
}

func FuzzSenderData(f *testing.F) {
	f.Add(make([]byte, 12))
	fuzzRoundTrip(f, func() codecValue { return new(SenderData) })
}
