package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

// Sender identifies who sent a message (§6).
type Sender struct {
	Type SenderType
	// Index is the leaf index of a member sender, or the index into the
	// external_senders extension of an external sender.
	Index uint32
}

// MemberSender returns the Sender of the member at leaf.
func MemberSender(leaf uint32) Sender { return Sender{Type: SenderMember, Index: leaf} }

// MarshalMLS encodes Sender.
func (s *Sender) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint8(uint8(s.Type))
	switch s.Type {
	case SenderMember, SenderExternal:
		b.AddUint32(s.Index)
	case SenderNewMemberProposal, SenderNewMemberCommit:
	default:
		b.SetError(ErrInvalidStruct)
	}
}

// UnmarshalMLS decodes Sender.
func (s *Sender) UnmarshalMLS(in *cryptobyte.String) bool {
	*s = Sender{}
	if !in.ReadUint8((*uint8)(&s.Type)) {
		return false
	}
	switch s.Type {
	case SenderMember, SenderExternal:
		return in.ReadUint32(&s.Index)
	case SenderNewMemberProposal, SenderNewMemberCommit:
		return true
	}
	return false
}

// FramedContent is the content of a handshake or application message (§6).
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte   // ContentType == application
	Proposal          Proposal // ContentType == proposal
	Commit            *Commit  // ContentType == commit
}

// marshalContent encodes the select of FramedContent and
// PrivateMessageContent on content_type.
func marshalContent(b *cryptobyte.Builder, ct ContentType, app []byte, p Proposal, c *Commit) {
	switch ct {
	case ContentApplication:
		codec.AddOpaque(b, app)
	case ContentProposal:
		MarshalProposal(b, p)
	case ContentCommit:
		if c == nil {
			b.SetError(ErrInvalidStruct)
			return
		}
		c.MarshalMLS(b)
	default:
		b.SetError(ErrInvalidStruct)
	}
}

func readContent(s *cryptobyte.String, ct ContentType, app *[]byte, p *Proposal, c **Commit) bool {
	switch ct {
	case ContentApplication:
		return codec.ReadOpaque(s, app)
	case ContentProposal:
		return ReadProposal(s, p)
	case ContentCommit:
		*c = new(Commit)
		return (*c).UnmarshalMLS(s)
	}
	return false
}

// MarshalMLS encodes FramedContent.
func (f *FramedContent) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddOpaque(b, f.GroupID)
	b.AddUint64(f.Epoch)
	f.Sender.MarshalMLS(b)
	codec.AddOpaque(b, f.AuthenticatedData)
	b.AddUint8(uint8(f.ContentType))
	marshalContent(b, f.ContentType, f.ApplicationData, f.Proposal, f.Commit)
}

// UnmarshalMLS decodes FramedContent.
func (f *FramedContent) UnmarshalMLS(s *cryptobyte.String) bool {
	*f = FramedContent{}
	return codec.ReadOpaque(s, &f.GroupID) &&
		s.ReadUint64(&f.Epoch) &&
		f.Sender.UnmarshalMLS(s) &&
		codec.ReadOpaque(s, &f.AuthenticatedData) &&
		s.ReadUint8((*uint8)(&f.ContentType)) &&
		readContent(s, f.ContentType, &f.ApplicationData, &f.Proposal, &f.Commit)
}

// FramedContentAuthData authenticates a FramedContent (§6.1).
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte // commits only
}

// MarshalAuth encodes FramedContentAuthData for content type ct.
func (a *FramedContentAuthData) MarshalAuth(b *cryptobyte.Builder, ct ContentType) {
	codec.AddOpaque(b, a.Signature)
	if ct == ContentCommit {
		codec.AddOpaque(b, a.ConfirmationTag)
	}
}

// ReadAuth decodes FramedContentAuthData for content type ct.
func (a *FramedContentAuthData) ReadAuth(s *cryptobyte.String, ct ContentType) bool {
	*a = FramedContentAuthData{}
	if !codec.ReadOpaque(s, &a.Signature) {
		return false
	}
	if ct == ContentCommit {
		return codec.ReadOpaque(s, &a.ConfirmationTag)
	}
	return true
}

// AuthenticatedContent is a FramedContent with its authentication (§6.1).
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

// MarshalMLS encodes AuthenticatedContent.
func (a *AuthenticatedContent) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint16(uint16(a.WireFormat))
	a.Content.MarshalMLS(b)
	a.Auth.MarshalAuth(b, a.Content.ContentType)
}

// UnmarshalMLS decodes AuthenticatedContent.
func (a *AuthenticatedContent) UnmarshalMLS(s *cryptobyte.String) bool {
	*a = AuthenticatedContent{}
	return s.ReadUint16((*uint16)(&a.WireFormat)) &&
		a.WireFormat.valid() &&
		a.Content.UnmarshalMLS(s) &&
		a.Auth.ReadAuth(s, a.Content.ContentType)
}

// FramedContentTBS returns the encoding of FramedContentTBS (§6.1).
// groupContext is the encoded GroupContext, required for member and
// new_member_commit senders and ignored otherwise.
func FramedContentTBS(wf WireFormat, content *FramedContent, groupContext []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(MLS10))
	b.AddUint16(uint16(wf))
	content.MarshalMLS(&b)
	switch content.Sender.Type {
	case SenderMember, SenderNewMemberCommit:
		b.AddBytes(groupContext)
	}
	return b.Bytes()
}

// FramedContentTBSLabel is the SignWithLabel label of FramedContentTBS.
const FramedContentTBSLabel = "FramedContentTBS"

// ConfirmedTranscriptHashInput returns the encoding of
// ConfirmedTranscriptHashInput for a commit (§8.2).
func ConfirmedTranscriptHashInput(wf WireFormat, content *FramedContent, signature []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(wf))
	content.MarshalMLS(&b)
	codec.AddOpaque(&b, signature)
	return b.Bytes()
}

// InterimTranscriptHashInput returns the encoding of
// InterimTranscriptHashInput (§8.2).
func InterimTranscriptHashInput(confirmationTag []byte) []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, confirmationTag)
	return b.BytesOrPanic()
}

// PublicMessage is a signed, unencrypted handshake message (§6.2).
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte // member senders only
}

// MarshalMLS encodes PublicMessage.
func (p *PublicMessage) MarshalMLS(b *cryptobyte.Builder) {
	p.Content.MarshalMLS(b)
	p.Auth.MarshalAuth(b, p.Content.ContentType)
	if p.Content.Sender.Type == SenderMember {
		codec.AddOpaque(b, p.MembershipTag)
	}
}

// UnmarshalMLS decodes PublicMessage.
func (p *PublicMessage) UnmarshalMLS(s *cryptobyte.String) bool {
	*p = PublicMessage{}
	if !p.Content.UnmarshalMLS(s) || !p.Auth.ReadAuth(s, p.Content.ContentType) {
		return false
	}
	if p.Content.Sender.Type == SenderMember {
		return codec.ReadOpaque(s, &p.MembershipTag)
	}
	return true
}

// AuthenticatedContentTBM returns the encoding of AuthenticatedContentTBM,
// the input of the membership tag (§6.2).
func AuthenticatedContentTBM(content *FramedContent, auth *FramedContentAuthData, groupContext []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(MLS10))
	b.AddUint16(uint16(WireFormatPublicMessage))
	content.MarshalMLS(&b)
	switch content.Sender.Type {
	case SenderMember, SenderNewMemberCommit:
		b.AddBytes(groupContext)
	}
	auth.MarshalAuth(&b, content.ContentType)
	return b.Bytes()
}

// PrivateMessage is an encrypted message (§6.3).
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// MarshalMLS encodes PrivateMessage.
func (p *PrivateMessage) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddOpaque(b, p.GroupID)
	b.AddUint64(p.Epoch)
	b.AddUint8(uint8(p.ContentType))
	codec.AddOpaque(b, p.AuthenticatedData)
	codec.AddOpaque(b, p.EncryptedSenderData)
	codec.AddOpaque(b, p.Ciphertext)
}

// UnmarshalMLS decodes PrivateMessage.
func (p *PrivateMessage) UnmarshalMLS(s *cryptobyte.String) bool {
	*p = PrivateMessage{}
	return codec.ReadOpaque(s, &p.GroupID) &&
		s.ReadUint64(&p.Epoch) &&
		s.ReadUint8((*uint8)(&p.ContentType)) &&
		p.ContentType.valid() &&
		codec.ReadOpaque(s, &p.AuthenticatedData) &&
		codec.ReadOpaque(s, &p.EncryptedSenderData) &&
		codec.ReadOpaque(s, &p.Ciphertext)
}

// PrivateMessageContent is the plaintext of a PrivateMessage (§6.3.1).
type PrivateMessageContent struct {
	ContentType     ContentType // not encoded: taken from the PrivateMessage
	ApplicationData []byte
	Proposal        Proposal
	Commit          *Commit
	Auth            FramedContentAuthData
	Padding         int // number of zero bytes after the content
}

// MarshalMLS encodes PrivateMessageContent with its padding.
func (p *PrivateMessageContent) MarshalMLS(b *cryptobyte.Builder) {
	marshalContent(b, p.ContentType, p.ApplicationData, p.Proposal, p.Commit)
	p.Auth.MarshalAuth(b, p.ContentType)
	if p.Padding > 0 {
		b.AddBytes(make([]byte, p.Padding))
	}
}

// UnmarshalMLS decodes PrivateMessageContent; p.ContentType must be set.
// The padding must be all zeros (§6.3.1).
func (p *PrivateMessageContent) UnmarshalMLS(s *cryptobyte.String) bool {
	ct := p.ContentType
	*p = PrivateMessageContent{ContentType: ct}
	if !readContent(s, ct, &p.ApplicationData, &p.Proposal, &p.Commit) || !p.Auth.ReadAuth(s, ct) {
		return false
	}
	for _, c := range *s {
		if c != 0 {
			return false
		}
	}
	p.Padding = len(*s)
	*s = (*s)[len(*s):]
	return true
}

// SenderData is the encrypted sender information of a PrivateMessage (§6.3.2).
type SenderData struct {
	LeafIndex  uint32
	Generation uint32
	ReuseGuard [4]byte
}

// MarshalMLS encodes SenderData.
func (d *SenderData) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint32(d.LeafIndex)
	b.AddUint32(d.Generation)
	b.AddBytes(d.ReuseGuard[:])
}

// UnmarshalMLS decodes SenderData.
func (d *SenderData) UnmarshalMLS(s *cryptobyte.String) bool {
	var g []byte
	if !s.ReadUint32(&d.LeafIndex) || !s.ReadUint32(&d.Generation) || !s.ReadBytes(&g, 4) {
		return false
	}
	copy(d.ReuseGuard[:], g)
	return true
}

// SenderDataAAD returns the encoding of SenderDataAAD (§6.3.2).
func SenderDataAAD(groupID []byte, epoch uint64, ct ContentType) []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, groupID)
	b.AddUint64(epoch)
	b.AddUint8(uint8(ct))
	return b.BytesOrPanic()
}

// PrivateContentAAD returns the encoding of PrivateContentAAD (§6.3.1).
func PrivateContentAAD(groupID []byte, epoch uint64, ct ContentType, authenticatedData []byte) []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, groupID)
	b.AddUint64(epoch)
	b.AddUint8(uint8(ct))
	codec.AddOpaque(&b, authenticatedData)
	return b.BytesOrPanic()
}

// MLSMessage is the top-level message container (§6). Exactly the field
// named by WireFormat is set.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// MarshalMLS encodes MLSMessage.
func (m *MLSMessage) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint16(uint16(m.Version))
	b.AddUint16(uint16(m.WireFormat))
	switch {
	case m.WireFormat == WireFormatPublicMessage && m.PublicMessage != nil:
		m.PublicMessage.MarshalMLS(b)
	case m.WireFormat == WireFormatPrivateMessage && m.PrivateMessage != nil:
		m.PrivateMessage.MarshalMLS(b)
	case m.WireFormat == WireFormatWelcome && m.Welcome != nil:
		m.Welcome.MarshalMLS(b)
	case m.WireFormat == WireFormatGroupInfo && m.GroupInfo != nil:
		m.GroupInfo.MarshalMLS(b)
	case m.WireFormat == WireFormatKeyPackage && m.KeyPackage != nil:
		m.KeyPackage.MarshalMLS(b)
	default:
		b.SetError(ErrInvalidStruct)
	}
}

// UnmarshalMLS decodes MLSMessage. Only version mls10 is accepted.
func (m *MLSMessage) UnmarshalMLS(s *cryptobyte.String) bool {
	*m = MLSMessage{}
	if !s.ReadUint16((*uint16)(&m.Version)) || m.Version != MLS10 || !s.ReadUint16((*uint16)(&m.WireFormat)) {
		return false
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		m.PublicMessage = new(PublicMessage)
		return m.PublicMessage.UnmarshalMLS(s)
	case WireFormatPrivateMessage:
		m.PrivateMessage = new(PrivateMessage)
		return m.PrivateMessage.UnmarshalMLS(s)
	case WireFormatWelcome:
		m.Welcome = new(Welcome)
		return m.Welcome.UnmarshalMLS(s)
	case WireFormatGroupInfo:
		m.GroupInfo = new(GroupInfo)
		return m.GroupInfo.UnmarshalMLS(s)
	case WireFormatKeyPackage:
		m.KeyPackage = new(KeyPackage)
		return m.KeyPackage.UnmarshalMLS(s)
	}
	return false
}

// NewMLSMessage wraps one of *PublicMessage, *PrivateMessage, *Welcome,
// *GroupInfo or *KeyPackage in an MLSMessage.
func NewMLSMessage(body any) *MLSMessage {
	m := &MLSMessage{Version: MLS10}
	switch v := body.(type) {
	case *PublicMessage:
		m.WireFormat, m.PublicMessage = WireFormatPublicMessage, v
	case *PrivateMessage:
		m.WireFormat, m.PrivateMessage = WireFormatPrivateMessage, v
	case *Welcome:
		m.WireFormat, m.Welcome = WireFormatWelcome, v
	case *GroupInfo:
		m.WireFormat, m.GroupInfo = WireFormatGroupInfo, v
	case *KeyPackage:
		m.WireFormat, m.KeyPackage = WireFormatKeyPackage, v
	}
	return m
}
