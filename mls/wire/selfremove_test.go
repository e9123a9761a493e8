package wire

import (
	"bytes"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
)

// SelfRemove (draft-ietf-mls-extensions-09) is struct {}: on the wire, a
// Proposal of type 0x000a with nothing after it.
func TestSelfRemoveEncodesAsItsTypeAlone(t *testing.T) {
	enc := codec.MustMarshal(&ProposalMessage{Proposal: &SelfRemove{}})
	if want := []byte{0x00, 0x0a}; !bytes.Equal(enc, want) {
		t.Fatalf("encoding = %x, want %x", enc, want)
	}
	var m ProposalMessage
	if err := codec.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Proposal.ProposalType(), ProposalSelfRemove; got != want {
		t.Errorf("decoded type = %v, want %v", got, want)
	}
	if got, want := ProposalSelfRemove.String(), "self_remove"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if ProposalSelfRemove.IsDefault() {
		t.Error("self_remove is a default proposal type; members must list it in their capabilities")
	}
	// A body would be trailing bytes.
	if err := codec.Unmarshal([]byte{0x00, 0x0a, 0x00}, &m); err == nil {
		t.Error("self_remove with a body decoded")
	}
}
