package group

import (
	"errors"
	"fmt"
)

var (
	// ErrWrongGroup reports a message for another group.
	ErrWrongGroup = errors.New("group: message is for another group")
	// ErrWrongEpoch reports a message made in another epoch than the state
	// processing it.
	ErrWrongEpoch = errors.New("group: message is for another epoch")
	// ErrUnknownSender reports a sender that is not a member (a blank or
	// out-of-range leaf, or an unknown external sender).
	ErrUnknownSender = errors.New("group: unknown sender")
	// ErrInvalidSenderType reports a sender type the content does not allow.
	ErrInvalidSenderType = errors.New("group: sender type not allowed for this content")
	// ErrBadSignature reports a signature that does not verify.
	ErrBadSignature = errors.New("group: invalid signature")
	// ErrOwnMessage reports a message that this member sent itself; its
	// effect is obtained from the StagedCommit or proposal that made it.
	ErrOwnMessage = errors.New("group: message sent by this member")
	// ErrUnknownProposal reports a commit referring to a proposal this
	// member has not seen in the epoch.
	ErrUnknownProposal = errors.New("group: commit refers to an unknown proposal")
	// ErrInvalidProposal reports a proposal that breaks a rule of §12.1;
	// the wrapped error says which.
	ErrInvalidProposal = errors.New("group: invalid proposal")
	// ErrInvalidProposalList reports a committed proposal list that breaks
	// a rule of §12.2; the wrapped error says which.
	ErrInvalidProposalList = errors.New("group: invalid proposal list")
	// ErrPathRequired reports a commit without a path that needs one.
	ErrPathRequired = errors.New("group: commit requires a path")
	// ErrInvalidCommit reports a commit that fails processing (§12.4.2);
	// the wrapped error says why.
	ErrInvalidCommit = errors.New("group: invalid commit")
	// ErrBadConfirmationTag reports a commit or GroupInfo whose
	// confirmation tag does not verify.
	ErrBadConfirmationTag = errors.New("group: invalid confirmation tag")
	// ErrMissingPSK reports a PSK the member does not hold.
	ErrMissingPSK = errors.New("group: pre-shared key not available")
	// ErrInvalidKeyPackage reports a KeyPackage that fails validation
	// (§10.1); the wrapped error says why.
	ErrInvalidKeyPackage = errors.New("group: invalid key package")
	// ErrInvalidWelcome reports a Welcome that cannot be joined (§12.4.3.1);
	// the wrapped error says why.
	ErrInvalidWelcome = errors.New("group: invalid welcome")
	// ErrNoMatchingKeyPackage reports a Welcome with no entry for the
	// joiner's KeyPackage.
	ErrNoMatchingKeyPackage = errors.New("group: welcome is not for this key package")
	// ErrInvalidGroupInfo reports a GroupInfo that fails verification.
	ErrInvalidGroupInfo = errors.New("group: invalid group info")
	// ErrTreeMissing reports a join without a ratchet tree.
	ErrTreeMissing = errors.New("group: ratchet tree not provided")
	// ErrNotMember reports an operation that needs membership by a state
	// whose member has been removed.
	ErrNotMember = errors.New("group: not a member of the group")
	// ErrReInitPending reports an attempt to use a group that is being
	// reinitialized (§11.2).
	ErrReInitPending = errors.New("group: group is being reinitialized")
	// ErrApplicationInPublic reports application data sent as a
	// PublicMessage.
	ErrApplicationInPublic = errors.New("group: application message must be encrypted")
	// ErrUnsupportedMessage reports a wire format the operation does not
	// accept.
	ErrUnsupportedMessage = errors.New("group: unsupported message type")
	// ErrMalformedSnapshot reports a state snapshot that does not decode.
	ErrMalformedSnapshot = errors.New("group: malformed state snapshot")
	// ErrSelfRemoveUnsupported reports a SelfRemove proposed in a group
	// where some member does not list self_remove in its capabilities:
	// the group is not self-remove-capable, and the member leaves with a
	// Remove proposal instead.
	ErrSelfRemoveUnsupported = errors.New("group: not every member supports self_remove")
	// ErrSelfRemoveSent reports a second SelfRemove from this member in
	// one epoch (draft-ietf-mls-extensions: at most one per epoch); the
	// first one, still cached, is the one to commit.
	ErrSelfRemoveSent = errors.New("group: self_remove already sent in this epoch")
)

// The rules of proposal list validation (§12.2), each wrapping
// ErrInvalidProposalList, and of commit processing (§12.4.2), each wrapping
// ErrInvalidCommit.
var (
	ErrCommitterUpdate        = fmt.Errorf("%w: the committer includes its own update", ErrInvalidProposalList)
	ErrCommitterRemoved       = fmt.Errorf("%w: the committer removes itself", ErrInvalidProposalList)
	ErrDuplicateLeafChange    = fmt.Errorf("%w: several updates or removes for one leaf", ErrInvalidProposalList)
	ErrDuplicatePSK           = fmt.Errorf("%w: a PSK is included twice", ErrInvalidProposalList)
	ErrMultipleGCE            = fmt.Errorf("%w: several group_context_extensions proposals", ErrInvalidProposalList)
	ErrReInitNotAlone         = fmt.Errorf("%w: reinit together with other proposals", ErrInvalidProposalList)
	ErrExternalInitInCommit   = fmt.Errorf("%w: external_init in a member's commit", ErrInvalidProposalList)
	ErrExternalCommitProposal = fmt.Errorf("%w: proposal not allowed in an external commit", ErrInvalidProposalList)
	ErrExternalCommitRef      = fmt.Errorf("%w: external commit refers to a proposal other than self_remove", ErrInvalidProposalList)
	ErrExternalInitCount      = fmt.Errorf("%w: external commit needs exactly one external_init", ErrInvalidProposalList)
	ErrExternalCommitRemoves  = fmt.Errorf("%w: external commit with several removes", ErrInvalidProposalList)
	ErrBlankLeafChange        = fmt.Errorf("%w: update or remove of a blank leaf", ErrInvalidProposalList)
	ErrUnsupportedByMembers   = fmt.Errorf("%w: not supported by every member", ErrInvalidProposalList)
	ErrAddMismatch            = fmt.Errorf("%w: added key package does not match the group", ErrInvalidProposalList)
	// ErrExternalRemove reports an external commit whose Remove is not a
	// resync: the removed leaf is not the joiner's own old leaf, as
	// Config.SameClient judges the two credentials.
	ErrExternalRemove = fmt.Errorf("%w: external commit removes another client's leaf", ErrInvalidProposalList)

	ErrCommitterBlank      = fmt.Errorf("%w: committer's leaf is blank", ErrInvalidCommit)
	ErrCommitterKeyReused  = fmt.Errorf("%w: committer's encryption key unchanged", ErrInvalidCommit)
	ErrPathKeyInTree       = fmt.Errorf("%w: an UpdatePath key is already in the tree", ErrInvalidCommit)
	ErrCommitterLeaf       = fmt.Errorf("%w: committer's new leaf is invalid", ErrInvalidCommit)
	ErrPSKRule             = fmt.Errorf("%w: PreSharedKey rule", ErrInvalidProposal)
	ErrRemoveUnknownMember = fmt.Errorf("%w: remove of a blank or unknown leaf", ErrInvalidProposal)
)

// The rules of the SelfRemove proposal (draft-ietf-mls-extensions-09,
// "SelfRemove Proposal"; see selfremove.go). A SelfRemove from a sender that
// is not a member is ErrInvalidSenderType, one that removes the committer
// ErrCommitterRemoved, one for a leaf another Update, Remove or SelfRemove
// of the list changes ErrDuplicateLeafChange, one in a group where some
// remaining member lacks the capability ErrUnsupportedByMembers, and a
// commit with one but no path ErrPathRequired.
var (
	ErrSelfRemoveByValue   = fmt.Errorf("%w: self_remove by value", ErrInvalidProposalList)
	ErrSelfRemoveEncrypted = fmt.Errorf("%w: self_remove not sent as a PublicMessage", ErrInvalidProposal)
)
