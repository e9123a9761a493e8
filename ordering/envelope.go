package ordering

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
)

// EnvelopeVersion is the version of the wire envelope.
const EnvelopeVersion = 1

// EpochID names an epoch: 32 bytes exported from the epoch's secrets, so
// that two sibling epochs with the same number differ and outsiders
// cannot compute it.
type EpochID [32]byte

// String returns a short hex prefix, enough for logs.
func (id EpochID) String() string { return hex.EncodeToString(id[:6]) }

// IsZero reports whether id is unset.
func (id EpochID) IsZero() bool { return id == EpochID{} }

// epochIDLabel is the MLS-Exporter label of epoch ids.
const epochIDLabel = "parley epoch id"

// EpochIDOf returns the id of a State's epoch.
func EpochIDOf(s *group.State) EpochID {
	out, err := s.Export(epochIDLabel, nil, 32)
	if err != nil {
		panic("ordering: exporter failed: " + err.Error()) // 32 bytes is always in range
	}
	var id EpochID
	copy(id[:], out)
	return id
}

// Kind says what an envelope carries.
type Kind uint8

// Envelope kinds.
const (
	// KindHandshake carries an MLS commit or proposal.
	KindHandshake Kind = 1
	// KindApplication carries an MLS PrivateMessage with an AppMessage.
	KindApplication Kind = 2
	// KindHead carries a member's signed head: the epoch it is on.
	KindHead Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindHandshake:
		return "handshake"
	case KindApplication:
		return "application"
	case KindHead:
		return "head"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Envelope is the unit of gossip: one TLS-encoded struct per message.
//
//	struct {
//	    uint8 version = 1;
//	    uint8 kind;
//	    opaque epoch_id[32];   // the epoch the payload was made in
//	    opaque payload<V>;     // an MLSMessage, or a Head
//	} Envelope;
type Envelope struct {
	Kind    Kind
	Epoch   EpochID
	Payload []byte
}

// MarshalMLS encodes the envelope.
func (e *Envelope) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint8(EnvelopeVersion)
	b.AddUint8(uint8(e.Kind))
	b.AddBytes(e.Epoch[:])
	codec.AddOpaque(b, e.Payload)
}

// UnmarshalMLS decodes an envelope, rejecting unknown versions and kinds.
func (e *Envelope) UnmarshalMLS(s *cryptobyte.String) bool {
	var version uint8
	var epoch []byte
	if !s.ReadUint8(&version) || version != EnvelopeVersion ||
		!s.ReadUint8((*uint8)(&e.Kind)) || e.Kind < KindHandshake || e.Kind > KindHead ||
		!s.ReadBytes(&epoch, 32) || !codec.ReadOpaque(s, &e.Payload) {
		return false
	}
	copy(e.Epoch[:], epoch)
	return true
}

// Encode returns the envelope's bytes.
func (e *Envelope) Encode() []byte { return codec.MustMarshal(e) }

// DecodeEnvelope decodes an envelope.
func DecodeEnvelope(data []byte) (*Envelope, error) {
	var e Envelope
	if err := codec.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedEnvelope, err)
	}
	return &e, nil
}

// MessageHash identifies an envelope's payload (for deduplication and the
// tie-break of the fork choice).
func MessageHash(payload []byte) [32]byte { return sha256.Sum256(payload) }

// MessageID is the sender-chosen id of an application message; receivers
// deliver each id once.
type MessageID [16]byte

// String returns the id in hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// AppMessage is the plaintext of an application message.
//
//	struct {
//	    opaque id[16];
//	    uint64 sent_at;      // sender's clock, milliseconds; informational
//	    uint16 content_type; // application-defined
//	    opaque body<V>;
//	} AppMessage;
type AppMessage struct {
	ID          MessageID
	SentAt      uint64
	ContentType uint16
	Body        []byte
}

// MarshalMLS encodes the message.
func (m *AppMessage) MarshalMLS(b *cryptobyte.Builder) {
	b.AddBytes(m.ID[:])
	b.AddUint64(m.SentAt)
	b.AddUint16(m.ContentType)
	codec.AddOpaque(b, m.Body)
}

// UnmarshalMLS decodes the message.
func (m *AppMessage) UnmarshalMLS(s *cryptobyte.String) bool {
	var id []byte
	if !s.ReadBytes(&id, 16) || !s.ReadUint64(&m.SentAt) || !s.ReadUint16(&m.ContentType) || !codec.ReadOpaque(s, &m.Body) {
		return false
	}
	copy(m.ID[:], id)
	return true
}

// Head is a member's signed statement of the epoch it is on. Heads are the
// votes of the fork choice and tell members that they are behind.
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    opaque tip[32];
//	    uint32 leaf;        // the signer's leaf in the tip epoch
//	    uint64 seq;         // the signer's head counter, increasing
//	    opaque signature_key<V>; // the signer's MLS signature key
//	    LogDigest logs<V>;   // application messages seen per recent epoch
//	    LogDigest span;      // all messages of the canonical epochs span.epoch..epoch
//	    opaque signature<V>; // SignWithLabel(., "Parley Head", fields above)
//	} Head;
//
//	struct { uint64 epoch; uint32 count; uint64 bytes; opaque digest[8]; } LogDigest;
//
// (A span, and the digests of a sync request, carry no bytes.)
//
// The signature key lets a member that does not know the tip epoch check
// the head against the member it knows with that key. The log digests let
// members on the same chain notice that one of them missed application
// messages (a partition drops gossip) and fetch them.
type Head struct {
	GroupID      []byte
	Epoch        uint64
	Tip          EpochID
	Leaf         uint32
	Seq          uint64
	SignatureKey []byte
	Logs         []LogDigest
	// Span summarizes every application message of the canonical epochs
	// from Span.Epoch to Epoch, for members on the same tip to compare.
	Span      LogDigest
	Signature []byte
}

// LogDigest summarizes the application messages seen in one epoch: their
// number and the XOR of the first 8 bytes of their hashes; in a head's
// Logs, also their envelopes' bytes, so that a member that lacks some
// knows how much (Loop.Missing).
type LogDigest struct {
	Epoch  uint64
	Count  uint32
	Bytes  uint64
	Digest [8]byte
}

func (h *Head) marshalBody(b *cryptobyte.Builder) {
	codec.AddOpaque(b, h.GroupID)
	b.AddUint64(h.Epoch)
	b.AddBytes(h.Tip[:])
	b.AddUint32(h.Leaf)
	b.AddUint64(h.Seq)
	codec.AddOpaque(b, h.SignatureKey)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, d := range h.Logs {
			b.AddUint64(d.Epoch)
			b.AddUint32(d.Count)
			b.AddUint64(d.Bytes)
			b.AddBytes(d.Digest[:])
		}
	})
	b.AddUint64(h.Span.Epoch)
	b.AddUint32(h.Span.Count)
	b.AddBytes(h.Span.Digest[:])
}

// MarshalMLS encodes the head.
func (h *Head) MarshalMLS(b *cryptobyte.Builder) {
	h.marshalBody(b)
	codec.AddOpaque(b, h.Signature)
}

// UnmarshalMLS decodes the head.
func (h *Head) UnmarshalMLS(s *cryptobyte.String) bool {
	var tip, spanDigest []byte
	if !codec.ReadOpaque(s, &h.GroupID) || !s.ReadUint64(&h.Epoch) || !s.ReadBytes(&tip, 32) ||
		!s.ReadUint32(&h.Leaf) || !s.ReadUint64(&h.Seq) || !codec.ReadOpaque(s, &h.SignatureKey) ||
		!codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var d LogDigest
			var dg []byte
			if !s.ReadUint64(&d.Epoch) || !s.ReadUint32(&d.Count) || !s.ReadUint64(&d.Bytes) || !s.ReadBytes(&dg, 8) {
				return false
			}
			copy(d.Digest[:], dg)
			h.Logs = append(h.Logs, d)
			return true
		}) || !s.ReadUint64(&h.Span.Epoch) || !s.ReadUint32(&h.Span.Count) || !s.ReadBytes(&spanDigest, 8) ||
		!codec.ReadOpaque(s, &h.Signature) {
		return false
	}
	copy(h.Tip[:], tip)
	copy(h.Span.Digest[:], spanDigest)
	return true
}

// headLabel is the SignWithLabel label of heads.
const headLabel = "Parley Head"

func (h *Head) tbs() []byte {
	var b cryptobyte.Builder
	h.marshalBody(&b)
	return b.BytesOrPanic()
}
