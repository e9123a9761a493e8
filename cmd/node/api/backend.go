// Package api is the local API of a running parley node: what the CLI, the
// terminal chat and any other program on the machine use to drive it. The
// daemon serves a Backend (the node) on a unix socket (mode 0600) and,
// optionally, on 127.0.0.1 TCP with a bearer token; the protocol is
// documented in docs/API.md.
package api

import (
	"context"
	"errors"
	"time"
)

// Backend is a running node, as the API serves it. Groups are named by
// their name or their hex id; members and contacts by name, peer ID or
// fingerprint.
type Backend interface {
	// Identity returns this node's identity and listening addresses.
	Identity(ctx context.Context) (Identity, error)
	// ContactCode returns this node's contact code: what another person
	// needs to add it as a contact and invite it (peer ID, addresses, a
	// KeyPackage).
	ContactCode(ctx context.Context) (string, error)
	// AddContact stores a contact from its code, under name if not empty.
	AddContact(ctx context.Context, code, name string) (Contact, error)
	Contacts(ctx context.Context) ([]Contact, error)
	// RemoveContact forgets a contact (by name, peer ID or fingerprint).
	// Groups it is a member of keep it: removing it from a group is
	// Remove.
	RemoveContact(ctx context.Context, contact string) error
	// RenameContact gives a contact another name on this node.
	RenameContact(ctx context.Context, contact, name string) (Contact, error)

	// CreateGroup makes a group with this node as its only member, in
	// the node's default cipher suite unless an option picks another.
	CreateGroup(ctx context.Context, name string, opts ...GroupOption) (Group, error)
	Groups(ctx context.Context) ([]Group, error)
	Members(ctx context.Context, group string) ([]Member, error)
	// Invite adds a known contact to a group. The contact need not be
	// online: its Welcome waits with the members until it comes up.
	Invite(ctx context.Context, group, contact string) error
	// InviteCode returns a code for someone not yet known: it lets them
	// reach a member and hand over a KeyPackage, which that member then
	// adds to the group with a commit.
	InviteCode(ctx context.Context, group string, opts ...InviteOption) (string, error)
	// JoinRequests lists the joins waiting for this node's approval:
	// those with its own invite codes made WithApproval, and those with
	// any member's codes made WithApprovalByMembers.
	JoinRequests(ctx context.Context) ([]JoinRequest, error)
	// Approve adds the joiner of a join request to its group (a request
	// shared with the members: and tells them it is decided). A joiner
	// that is a member already is ErrExists.
	Approve(ctx context.Context, request string) error
	// Deny drops a join request (a shared one: for every member); its
	// invite code stays spent.
	Deny(ctx context.Context, request string) error
	// Join uses an invite code. The group appears as pending until the
	// Welcome arrives.
	Join(ctx context.Context, code string) (Group, error)
	Remove(ctx context.Context, group, member string) error
	// Leave asks the other members to remove this one.
	Leave(ctx context.Context, group string) error
	// ForgetGroup removes a group from this node: its loop stops and its
	// records (state, history, outbox, file chunks) are deleted. It is
	// for a group the node is no longer in, is still joining, or whose
	// saved state is damaged; for a group the node is a member of it
	// returns ErrInvalid unless force is set.
	ForgetGroup(ctx context.Context, group string, force bool) error

	// Send sends a text message and returns its id.
	Send(ctx context.Context, group, text string) (string, error)
	// SendFile announces the file at path (on the node's machine) to the
	// group and returns the announcement's message id at once; the
	// members fetch its content over direct streams, from this node or
	// any member that has it, and progress comes as events. An
	// interrupted transfer resumes when the node restarts.
	SendFile(ctx context.Context, group, path string) (string, error)
	// Read returns the group's history after position after (0: from the
	// start), at most limit messages (0: all).
	Read(ctx context.Context, group string, after uint64, limit int) ([]Message, error)

	Status(ctx context.Context) (Status, error)
	// Subscribe streams events until ctx ends. Group, if not empty,
	// restricts them to one group.
	Subscribe(ctx context.Context, group string) (<-chan Event, error)
}

// Identity is a node's identity.
type Identity struct {
	Name   string   `json:"name"`
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
	// Fingerprint is the safety number people compare to check each
	// other: groups of five digits derived from the MLS signature key.
	Fingerprint string `json:"fingerprint"`
}

// Contact is a known person (a node).
type Contact struct {
	Name        string   `json:"name"`
	PeerID      string   `json:"peer_id"`
	Fingerprint string   `json:"fingerprint"`
	Addrs       []string `json:"addrs,omitempty"`
	Online      bool     `json:"online"`
	// Via says how this node reaches the contact's node while Online: "direct",
	// or "relay" through a circuit relay (empty while offline).
	Via string `json:"via,omitempty"`
}

// GroupOption sets an optional parameter of CreateGroup.
type GroupOption func(*GroupSettings)

// GroupSettings are the optional parameters of CreateGroup.
type GroupSettings struct {
	// Suite is the group's MLS cipher suite: its name or its number, in
	// decimal or in hexadecimal with a 0x prefix, as 'parley suites'
	// lists them. Empty means the node's default.
	Suite string
}

// WithSuite picks the cipher suite of a new group (see GroupSettings).
func WithSuite(suite string) GroupOption {
	return func(s *GroupSettings) { s.Suite = suite }
}

// InviteOption sets an optional parameter of InviteCode.
type InviteOption func(*InviteSettings)

// InviteSettings are the optional parameters of InviteCode.
type InviteSettings struct {
	// Approve: a join with the code waits for this node's user to
	// approve it (JoinRequests, Approve, Deny) instead of being added
	// at once.
	Approve bool
	// ByMembers (with Approve): the join request goes to every member of
	// the group, and any of them may approve or deny it, also while the
	// inviting node is offline.
	ByMembers bool
}

// Who approves the joins with an invite code (InviteSettings.ApproveBy).
const (
	ApproveByInviter = "inviter"
	ApproveByMembers = "members"
)

// ApproveBy says who approves the joins with the code: "" (nobody: a
// joiner is added at once), ApproveByInviter or ApproveByMembers.
func (s InviteSettings) ApproveBy() string {
	switch {
	case s.Approve && s.ByMembers:
		return ApproveByMembers
	case s.Approve:
		return ApproveByInviter
	}
	return ""
}

// WithApproval makes an invite code whose joins wait for the approval of
// this node's user.
func WithApproval() InviteOption {
	return func(s *InviteSettings) { s.Approve = true }
}

// WithApprovalByMembers makes an invite code whose joins wait for the
// approval of any member of the group.
func WithApprovalByMembers() InviteOption {
	return func(s *InviteSettings) { s.Approve, s.ByMembers = true, true }
}

// NewInviteSettings applies opts to the zero settings.
func NewInviteSettings(opts ...InviteOption) InviteSettings {
	var s InviteSettings
	for _, o := range opts {
		o(&s)
	}
	return s
}

// JoinRequest is a join with an invite code that waits for approval.
type JoinRequest struct {
	ID          string    `json:"id"`
	Group       string    `json:"group"` // hex id
	GroupName   string    `json:"group_name"`
	Name        string    `json:"name"` // the name the joiner chose
	PeerID      string    `json:"peer_id"`
	Fingerprint string    `json:"fingerprint"`
	At          time.Time `json:"at"`
	// InvitedBy is the name of the member whose invite code the joiner
	// used; ApproveBy who may decide (ApproveByInviter: this node only,
	// ApproveByMembers: any member).
	InvitedBy string `json:"invited_by"`
	ApproveBy string `json:"approve_by"`
}

// NewGroupSettings applies opts to the zero settings.
func NewGroupSettings(opts ...GroupOption) GroupSettings {
	var s GroupSettings
	for _, o := range opts {
		o(&s)
	}
	return s
}

// Group is a group this node is in (or is joining).
type Group struct {
	ID      string `json:"id"` // hex
	Name    string `json:"name"`
	Epoch   uint64 `json:"epoch"`
	Members int    `json:"members"`
	// Suite and SuiteName are the group's MLS cipher suite: its number
	// (IANA's "MLS Cipher Suites", or the post-quantum suites' code
	// points) and name. Both are empty when the group's record cannot be
	// read.
	Suite     uint16 `json:"suite,omitempty"`
	SuiteName string `json:"suite_name,omitempty"`
	// Pending is set while the node waits for its Welcome; Approval
	// then says who must approve the join first: ApproveByInviter (the
	// member whose invite code it used), ApproveByMembers (any member),
	// or empty (nobody: the inviter adds it once online).
	Pending  bool   `json:"pending,omitempty"`
	Approval string `json:"approval,omitempty"`
	// Removed is set once the node is no longer a member.
	Removed bool `json:"removed,omitempty"`
	// Damaged, if not empty, says why the group's saved state could not
	// be read: the node cannot take part in it (methods that need it
	// return ErrDamaged) and its history stays readable until
	// ForgetGroup removes it.
	Damaged string `json:"damaged,omitempty"`
}

// Member is a member of a group.
type Member struct {
	Name        string `json:"name"`
	PeerID      string `json:"peer_id"`
	Fingerprint string `json:"fingerprint"`
	// AddedBy is the name of the member who asked for this one's add
	// (the sender of the Add proposal, who invited it or approved its
	// join request), whoever committed it; empty for the founder, or if
	// not known to this node (members added before it joined).
	AddedBy string `json:"added_by,omitempty"`
	Online  bool   `json:"online"`
	// Via says how this node reaches the member's node while Online: "direct",
	// or "relay" through a circuit relay (empty for itself and while
	// offline).
	Via  string `json:"via,omitempty"`
	Self bool   `json:"self,omitempty"`
}

// Message is one message of a group's history.
type Message struct {
	// Seq is the message's position in this node's history of the
	// group: Read(after=Seq) continues after it.
	Seq    uint64 `json:"seq"`
	ID     string `json:"id"` // hex, chosen by the sender
	Group  string `json:"group"`
	Sender string `json:"sender"`
	// SenderFingerprint identifies the sender beyond its chosen name.
	SenderFingerprint string    `json:"sender_fingerprint"`
	Epoch             uint64    `json:"epoch"`
	SentAt            time.Time `json:"sent_at"` // as the sender claims it
	ReceivedAt        time.Time `json:"received_at"`
	// Final is false while the epoch it was delivered in may still be
	// rolled back (the message would then be re-sent on the winning
	// branch, never delivered twice).
	Final bool      `json:"final"`
	Own   bool      `json:"own,omitempty"`
	Text  string    `json:"text,omitempty"`
	File  *FileInfo `json:"file,omitempty"`
}

// FileInfo describes a file message.
type FileInfo struct {
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"` // hex
	Received int64  `json:"received"`
	// Path is where the complete file is on the node's machine.
	Path string `json:"path,omitempty"`
}

// Status is the node's state at a glance.
type Status struct {
	PeerID string `json:"peer_id"`
	Peers  int    `json:"peers"`
	// StoreBytes is what the node's store takes on disk (badger's figure,
	// refreshed about once a minute; value-log garbage collection runs
	// on a schedule).
	StoreBytes int64 `json:"store_bytes"`
	// Goroutines and HeapBytes are the daemon's Go runtime at the time
	// of the call: goroutines running, and bytes of heap live after the
	// last garbage collection.
	Goroutines int    `json:"goroutines"`
	HeapBytes  uint64 `json:"heap_bytes"`
	// Reachability is AutoNAT's verdict on this node: "public",
	// "private" (behind a NAT: others reach it through a relay, and
	// directly where hole punching opens a way) or "unknown" (no peer
	// has checked it yet; on a LAN with no public peer it stays so).
	Reachability string `json:"reachability"`
	// RelayAddrs are this node's relayed addresses (behind a NAT).
	RelayAddrs []string      `json:"relay_addrs,omitempty"`
	Groups     []GroupStatus `json:"groups"`
}

// GroupStatus is one group's ordering state.
type GroupStatus struct {
	Group
	FinalEpoch uint64 `json:"final_epoch"`
	Forks      int    `json:"forks"`
	Rollbacks  int    `json:"rollbacks"`
	// Syncing is set while catch-up requests are outstanding.
	Syncing bool `json:"syncing,omitempty"`
	// Missing and MissingBytes are the messages (and their bytes) that
	// another member's latest head says exist in epochs of this member's
	// chain and this member lacks; BehindEpochs, how many epochs a
	// member's head is ahead on a branch this member does not hold yet.
	// All zero when the member has everything its peers say exists.
	Missing      int    `json:"missing,omitempty"`
	MissingBytes uint64 `json:"missing_bytes,omitempty"`
	BehindEpochs uint64 `json:"behind_epochs,omitempty"`
	// Stopped, if not empty, says why the group stopped: its state could
	// not be saved (the disk full, an I/O error). It starts again by
	// itself from what was saved, and catches up, once it can.
	Stopped string `json:"stopped,omitempty"`
	// Waiting are the membership changes this node asked for (invite,
	// remove, leave) that no epoch of the group shows yet, oldest first.
	// One that waits for long is one the group cannot commit.
	Waiting []Change `json:"waiting,omitempty"`
	// Outbox is the number of own messages not final yet.
	Outbox      int `json:"outbox"`
	OnlinePeers int `json:"online_peers"`
	// State is the group's health (StateOK, StateBehind, StateStalled,
	// ...; see Health), Reason why in a few words, and Todo what the
	// user can do about it; both empty when the state is ok.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Todo   string `json:"todo,omitempty"`
}

// Change is a membership change waiting to be committed.
type Change struct {
	// Change is "add", "remove" or "leave".
	Change string `json:"change"`
	Member string `json:"member"` // the member's name (a peer ID if it has none)
	// By is the member that proposed it, if another: absent for this
	// node's own changes.
	By string `json:"by,omitempty"`
	// AskedAt is when this node asked for it; absent if before the daemon
	// last started, and for another member's proposal.
	AskedAt time.Time `json:"asked_at,omitzero"`
}

// Event types.
const (
	EventMessage     = "message"      // Message is set
	EventFinal       = "final"        // Message (Seq, ID) became final in Message.Epoch (again, in a lower epoch, if a lower copy turns up)
	EventMembership  = "membership"   // Membership is set
	EventGroup       = "group"        // Group changed (joined, epoch, removed)
	EventFile        = "file"         // File progress is set
	EventNotice      = "notice"       // Text: a fork, a rollback, a missed range
	EventJoinRequest = "join_request" // JoinRequest: a join waits for approval
)

// Event is something that happened on the node.
type Event struct {
	Type        string       `json:"type"`
	Group       string       `json:"group,omitempty"` // hex id
	Message     *Message     `json:"message,omitempty"`
	Membership  *Membership  `json:"membership,omitempty"`
	GroupInfo   *Group       `json:"group_info,omitempty"`
	File        *Progress    `json:"file,omitempty"`
	Text        string       `json:"text,omitempty"`
	JoinRequest *JoinRequest `json:"join_request,omitempty"`
}

// Membership is a change of a group's members.
type Membership struct {
	Epoch   uint64   `json:"epoch"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// RemovedBy names, for each member in Removed, the member who asked
	// for its removal (itself when it left; "" where this node does not
	// know, as after a restart).
	RemovedBy []string `json:"removed_by,omitempty"`
}

// Progress is the progress of a file transfer, sent or received.
type Progress struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// Errors a Backend returns; the API carries them as codes, so the client
// returns the same values (errors.Is works across the socket).
var (
	ErrNotFound     = errors.New("not found")        // unknown group, contact or member
	ErrAmbiguous    = errors.New("ambiguous name")   // a name that matches several
	ErrBadCode      = errors.New("invalid code")     // a contact or invite code that does not decode or verify
	ErrNotMember    = errors.New("not a member")     // the node is not (yet, or any more) in the group
	ErrExists       = errors.New("already exists")   // a group or contact name in use
	ErrInvalid      = errors.New("invalid argument") // anything else wrong with a request
	ErrUnavailable  = errors.New("unavailable")      // a peer needed for the request cannot be reached
	ErrUnauthorized = errors.New("unauthorized")     // a TCP client without the token
	ErrDamaged      = errors.New("group damaged")    // the group's saved state is unreadable; forget it and rejoin
)
