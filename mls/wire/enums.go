package wire

// ProtocolVersion is the MLS protocol version (§6).
type ProtocolVersion uint16

// MLS10 is the version of RFC 9420.
const MLS10 ProtocolVersion = 1

// ContentType is the type of a FramedContent (§6).
type ContentType uint8

// Content types.
const (
	ContentApplication ContentType = 1
	ContentProposal    ContentType = 2
	ContentCommit      ContentType = 3
)

func (c ContentType) valid() bool { return c >= ContentApplication && c <= ContentCommit }

func (c ContentType) String() string {
	switch c {
	case ContentApplication:
		return "application"
	case ContentProposal:
		return "proposal"
	case ContentCommit:
		return "commit"
	}
	return "unknown"
}

// SenderType is the kind of sender of a message (§6).
type SenderType uint8

// Sender types.
const (
	SenderMember            SenderType = 1
	SenderExternal          SenderType = 2
	SenderNewMemberProposal SenderType = 3
	SenderNewMemberCommit   SenderType = 4
)

// WireFormat identifies the kind of an MLSMessage (§6).
type WireFormat uint16

// Wire formats.
const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

func (w WireFormat) valid() bool { return w >= WireFormatPublicMessage && w <= WireFormatKeyPackage }

// ExtensionType identifies an extension (IANA "MLS Extension Types").
type ExtensionType uint16

// Extension types of RFC 9420, §17.3.
const (
	ExtensionApplicationID        ExtensionType = 1
	ExtensionRatchetTree          ExtensionType = 2
	ExtensionRequiredCapabilities ExtensionType = 3
	ExtensionExternalPub          ExtensionType = 4
	ExtensionExternalSenders      ExtensionType = 5
)

// IsDefault reports whether t is one of the extensions every
// implementation supports and need not list in its capabilities (§7.2).
func (t ExtensionType) IsDefault() bool { return t >= 1 && t <= 5 }

// CredentialType identifies a credential (IANA "MLS Credential Types").
type CredentialType uint16

// Credential types of RFC 9420.
const (
	CredentialBasic CredentialType = 1
	CredentialX509  CredentialType = 2
)

// LeafNodeSource says why a LeafNode was made (§7.2).
type LeafNodeSource uint8

// Leaf node sources.
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// NodeType distinguishes leaves and parents in a serialized tree (§12.4.3.3).
type NodeType uint8

// Node types.
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// ProposalType identifies a proposal (IANA "MLS Proposal Types").
type ProposalType uint16

// Proposal types of RFC 9420, §17.4.
const (
	ProposalAdd                    ProposalType = 1
	ProposalUpdate                 ProposalType = 2
	ProposalRemove                 ProposalType = 3
	ProposalPreSharedKey           ProposalType = 4
	ProposalReInit                 ProposalType = 5
	ProposalExternalInit           ProposalType = 6
	ProposalGroupContextExtensions ProposalType = 7
)

// ProposalSelfRemove is the self_remove proposal of the MLS extensions
// document (draft-ietf-mls-extensions-09, "SelfRemove Proposal"), at the
// value the draft suggests to IANA, 0x000a, which OpenMLS uses too (mls-rs
// puts it at 0xF003, a private-use value). It is not a default type: a
// member lists it in its capabilities to support it.
const ProposalSelfRemove ProposalType = 0x000a

// IsDefault reports whether t is one of the proposal types every
// implementation supports (§7.2).
func (t ProposalType) IsDefault() bool { return t >= 1 && t <= 7 }

func (t ProposalType) String() string {
	switch t {
	case ProposalAdd:
		return "add"
	case ProposalUpdate:
		return "update"
	case ProposalRemove:
		return "remove"
	case ProposalPreSharedKey:
		return "psk"
	case ProposalReInit:
		return "reinit"
	case ProposalExternalInit:
		return "external_init"
	case ProposalGroupContextExtensions:
		return "group_context_extensions"
	case ProposalSelfRemove:
		return "self_remove"
	}
	return "unknown"
}

// PSKType is the kind of a pre-shared key (§8.4).
type PSKType uint8

// PSK types.
const (
	PSKExternal   PSKType = 1
	PSKResumption PSKType = 2
)

// ResumptionPSKUsage says what a resumption PSK is used for (§8.4).
type ResumptionPSKUsage uint8

// Resumption PSK usages.
const (
	ResumptionApplication ResumptionPSKUsage = 1
	ResumptionReInit      ResumptionPSKUsage = 2
	ResumptionBranch      ResumptionPSKUsage = 3
)

// ProposalOrRefType distinguishes inline proposals from references (§12.4).
type ProposalOrRefType uint8

// ProposalOrRef types.
const (
	ProposalOrRefProposal  ProposalOrRefType = 1
	ProposalOrRefReference ProposalOrRefType = 2
)

// GREASE lists the values §13.5 reserves in every MLS registry (cipher
// suites, extension, proposal and credential types): 0x0A0A, 0x1A1A, ...
// 0xEAEA. A receiver treats them as any unknown value; only a sender needs
// to know them, to put some where unknown values must be ignored and to
// leave them out of its own capabilities.
var GREASE = [...]uint16{
	0x0A0A, 0x1A1A, 0x2A2A, 0x3A3A, 0x4A4A, 0x5A5A, 0x6A6A, 0x7A7A,
	0x8A8A, 0x9A9A, 0xAAAA, 0xBABA, 0xCACA, 0xDADA, 0xEAEA,
}

// IsGREASE reports whether v is one of the GREASE values.
func IsGREASE[T ~uint16](v T) bool {
	x := uint16(v)
	return x&0x0F0F == 0x0A0A && x>>12 == (x>>4)&0xF && x != 0xFAFA
}
