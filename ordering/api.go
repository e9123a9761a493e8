package ordering

import (
	"crypto/rand"
	"io"
	"time"

	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/wire"
)

// Config is a member's ordering policy.
type Config struct {
	// Retention (H) is how many epochs below the tip are kept for
	// rollback, late messages and catch-up; deeper epochs are final and
	// pruned. Default 64.
	Retention int
	// MaxAge (T) prunes epochs replaced longer ago than this. Default 7
	// days.
	MaxAge time.Duration
	// HeadInterval is the least time between two heads; a head goes out
	// when the member's epoch changes. Default 500ms.
	HeadInterval time.Duration
	// HeadKeepalive is the time after which a head is sent even without a
	// change, so that members notice they are behind. Default 30s.
	HeadKeepalive time.Duration
	// CommitDelay is how long the preferred committer gathers proposals
	// before committing. Default 200ms.
	CommitDelay time.Duration
	// CommitBackoff is the extra wait per rank for the other members.
	// Default 2s.
	CommitBackoff time.Duration
	// SyncTimeout is how long a catch-up request may take. Default 10s.
	SyncTimeout time.Duration
	// GossipGrace is how long a member waits, after a head shows that it
	// lacks an epoch or messages, before it asks for them (it asks if
	// they are still missing then). Gossip brings most of what a head
	// announces a moment later, and an answer then brings it twice.
	// Default 1s (in the large-message scenario, 10 seeds, catch-up fell
	// from 393 to 200 MB, 1.70x to 1.50x what was missed). Progress does
	// not depend on it (see the package doc, "Liveness"): the property
	// tests also run with members that ask at once (1ns).
	GossipGrace time.Duration
	// KeepGossiped makes this member's catch-up answers carry the
	// application messages that reached it by gossip moments ago. By
	// default an answer leaves out those that reached it less than
	// GossipGrace before, and names them: gossip is bringing them to the
	// requester too, and it asks again GossipGrace later for those that
	// did not come. On the large sweep (100 members, 10 seeds) leaving
	// them out brought catch-up from 1.46x what was missed to 1.38x; the
	// property families pass 300 seeds either way, and a 30-minute chaos
	// run of 20 real daemons passed with it (see ordering/sim/RESULTS.md).
	// A member handles such answers either way.
	KeepGossiped bool
	// SnapshotInterval bounds how long the message keys consumed in an
	// epoch stay recoverable from the saved snapshot. Default 5s.
	SnapshotInterval time.Duration
	// UpdateInterval, when not zero, makes the member refresh its leaf
	// (an Update) this long after its last refresh (post-compromise
	// security).
	UpdateInterval time.Duration
	// UpdateAfter, when not zero, also makes the member refresh its leaf
	// once it has sent this many application messages since its last
	// refresh: a busy member's keys do not protect weeks of traffic.
	UpdateAfter int
	// MaxBuffered bounds the messages kept for epochs not yet known.
	// Default 1024.
	MaxBuffered int
	// MaxBufferedBytes bounds their bytes (default 16 MiB), and
	// MaxBufferedPerSender the bytes kept from one member (default a
	// quarter of MaxBufferedBytes).
	MaxBufferedBytes, MaxBufferedPerSender int
	// MaxRefusedKept bounds the bytes, per epoch, of the application
	// messages refused as sent by a removed member that are kept to serve
	// in catch-up to members that never saw them (default 1 MiB; negative
	// keeps none; see the package doc, "Exactly once").
	MaxRefusedKept int
	// MaxProposalsPerSender bounds the cached proposals of one member
	// that a commit made here includes (default 64): a member that floods
	// an epoch with proposals makes no commit larger or slower than that.
	// Those left out are discarded with the epoch; a member's own changes
	// left out are proposed again in the next (its intents stay open).
	MaxProposalsPerSender int
	// MLS is the MLS policy (credential validation, PSKs, randomness).
	MLS *group.Config
	// Rand is the randomness for message ids; nil means crypto/rand. The
	// simulator passes a seeded source here and in MLS.Rand.
	Rand io.Reader
	// Archive, if set, reads back saved envelopes and own messages, so
	// that those larger than SpillSize bytes (default 16 KiB) are not kept
	// in memory (see Archive).
	Archive   Archive
	SpillSize int
	// Verified, if set, remembers the heads whose signatures were checked,
	// for a process that runs many members (the simulator): each head is
	// then verified once, not once per member. A node leaves it nil.
	Verified *SignatureMemo
}

func (c *Config) withDefaults() Config {
	out := *c
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if out.Retention <= 0 {
		out.Retention = 64
	}
	def(&out.MaxAge, 7*24*time.Hour)
	def(&out.HeadInterval, 500*time.Millisecond)
	def(&out.HeadKeepalive, 30*time.Second)
	def(&out.CommitDelay, 200*time.Millisecond)
	def(&out.CommitBackoff, 2*time.Second)
	def(&out.SyncTimeout, 10*time.Second)
	def(&out.GossipGrace, time.Second)
	def(&out.SnapshotInterval, 5*time.Second)
	if out.SpillSize <= 0 {
		out.SpillSize = 16 << 10
	}
	if out.MaxBuffered <= 0 {
		out.MaxBuffered = 1024
	}
	if out.MaxBufferedBytes <= 0 {
		out.MaxBufferedBytes = 16 << 20
	}
	if out.MaxBufferedPerSender <= 0 {
		out.MaxBufferedPerSender = out.MaxBufferedBytes / 4
	}
	if out.MaxProposalsPerSender <= 0 {
		out.MaxProposalsPerSender = 64
	}
	if out.MaxRefusedKept == 0 {
		out.MaxRefusedKept = defaultRefusedKept
	}
	if out.MLS == nil {
		out.MLS = &group.Config{}
	}
	if out.Rand == nil {
		out.Rand = rand.Reader
	}
	if out.MLS.Rand == nil {
		out.MLS.Rand = out.Rand
	}
	if out.MLS.SecretTree == (secrettree.Config{}) {
		out.MLS.SecretTree = SecretTreeConfig
	}
	return out
}

// SecretTreeConfig is the secret-tree policy of a Loop whose MLS
// configuration sets none. A member cut off from a sender misses every
// generation the sender used meanwhile, and after the partition the
// sender's next message often comes before catch-up brings the missed
// ones: opening it skips all of them, and every skipped key must stay
// until its message comes, or the message is lost. So the window keeps as
// many skipped keys as a message may jump (a sender refreshes its leaf
// after UpdateAfter messages, 1,000 in the node, and each restore jumps
// 64). Keys are kept only for generations actually skipped: about 60
// bytes each, at most 4,096 a ratchet.
var SecretTreeConfig = secrettree.Config{OutOfOrderWindow: 4096, MaxForwardDistance: 4096}

// Finalization is a delivered message that became final in the
// canonical epoch Epoch.
type Finalization struct {
	ID    MessageID
	Epoch uint64
}

// Event is an input of the Loop.
type Event interface{ isEvent() }

// Inbound is an envelope received from the group's topic.
type Inbound struct {
	// From is the envelope's author, the peer that signed it for the
	// transport (not a relay): its member identity if it is a member of
	// an epoch this member holds (see Loop.Members).
	From string
	Data []byte
}

// Tick lets timers fire: heads, commits, snapshots, retention, timeouts.
type Tick struct{}

// SendMessage sends an application message to the group.
type SendMessage struct {
	ContentType uint16
	Body        []byte
}

// AddMember adds the owner of a KeyPackage (an encoded MLSMessage).
type AddMember struct{ KeyPackage []byte }

// RemoveMember removes the member with the identity.
type RemoveMember struct{ Identity string }

// UpdateKeys refreshes this member's leaf.
type UpdateKeys struct{}

// Leave asks the other members to remove this one.
type Leave struct{}

// WelcomeIn hands a member that already joined another Welcome for the
// group (a commit re-issued an add of it on another branch). The member
// keeps it and restarts from it if its own branch turns out to lose.
type WelcomeIn struct{ Welcome []byte }

// PeerJoined tells the loop that a peer came to the group's topic: the
// member publishes its head soon, so that a member that was away learns
// at once whether it is behind.
type PeerJoined struct{}

// SyncRequest is a catch-up request from another member.
type SyncRequest struct {
	// From is the authenticated peer of the stream the request came on:
	// its member identity if it is a member of an epoch this member holds.
	From string
	ID   uint64
	Body []byte
}

// SyncResponse answers a request this member made; Err is set when the
// transport failed.
type SyncResponse struct {
	ID   uint64
	Body []byte
	Err  error
}

func (Inbound) isEvent()      {}
func (Tick) isEvent()         {}
func (SendMessage) isEvent()  {}
func (AddMember) isEvent()    {}
func (RemoveMember) isEvent() {}
func (UpdateKeys) isEvent()   {}
func (Leave) isEvent()        {}
func (SyncRequest) isEvent()  {}
func (WelcomeIn) isEvent()    {}
func (SyncResponse) isEvent() {}
func (PeerJoined) isEvent()   {}

// Output is what the Loop decided while handling one event. The caller
// persists Persist first (atomically), then acts on the rest.
type Output struct {
	Persist    *Changes
	Publish    [][]byte // envelopes for the group's topic
	Requests   []OutRequest
	Responses  []OutResponse
	Welcomes   []OutWelcome
	Deliveries []Delivery
	// Finalized lists delivered messages whose epoch became final, each
	// with the number of that epoch: the one on the canonical chain,
	// which is not the epoch the message was delivered in when that one
	// lost a fork (the message then came again, re-sent on the winning
	// branch, and was not delivered twice). A message final already is
	// listed again when a copy of it comes in a lower final epoch of the
	// canonical chain: it is final in the lowest.
	Finalized []Finalization
	Notices   []Notice
	// Sent is the id of the message a SendMessage event sent, and SentAt
	// the time it carries (later than that of this member's message
	// before it).
	Sent   MessageID
	SentAt time.Time
	// Transmitted lists every application message copy published, with
	// the epoch it was protected in (a re-send after a rollback is a new
	// copy of the same id).
	Transmitted []Transmission
	// NewEpochs lists the epochs added to the member's graph.
	NewEpochs []EpochInfo
	// Verdict is what the member made of an Inbound envelope, for the
	// transport's validator.
	Verdict Verdict
}

// Transmission is one published copy of an application message.
type Transmission struct {
	ID    MessageID
	Epoch EpochID
}

// EpochInfo describes an epoch.
type EpochInfo struct {
	ID, Parent EpochID
	Number     uint64
	Members    []string
}

// OutRequest is a catch-up request to send to a peer.
type OutRequest struct {
	To   string
	ID   uint64
	Body []byte
}

// OutResponse answers a peer's request.
type OutResponse struct {
	To   string
	ID   uint64
	Body []byte
}

// OutWelcome is a Welcome for a member this member added; the caller
// delivers it to the joiner (who may be offline) over a direct stream.
type OutWelcome struct {
	Identity      string
	KeyPackageRef []byte
	Welcome       []byte // encoded MLSMessage
}

// Delivery is an application message for the app, delivered once.
type Delivery struct {
	ID          MessageID
	Sender      string
	ContentType uint16
	Body        []byte
	Epoch       uint64
	// SentAt is when the sender says it sent the message.
	SentAt time.Time
	// Final is set when the message's epoch is already final; otherwise a
	// later Output lists the id in Finalized.
	Final bool
}

// NoticeKind classifies notices.
type NoticeKind uint8

// Notice kinds.
const (
	// NoticeRejected: an inbound message was rejected (Err says why).
	NoticeRejected NoticeKind = iota + 1
	// NoticeFork: a second commit on an epoch was seen.
	NoticeFork
	// NoticeRollback: the member moved to another branch, undoing Depth
	// epochs.
	NoticeRollback
	// NoticeRemoved: the member was removed from the group.
	NoticeRemoved
	// NoticeRejoined: the member rejoined by external commit after being
	// away longer than retention; MissedFrom..MissedTo are the epochs
	// whose messages it could not get.
	NoticeRejoined
	// NoticeBehind: the member saw it is behind and asked for catch-up.
	NoticeBehind
	// NoticeMembership: members were added or removed on the canonical
	// chain.
	NoticeMembership
	// NoticeSynced: a catch-up answer arrived (Count envelopes).
	NoticeSynced
	// NoticeStorage: a saved envelope or message could not be read back
	// from the Archive (Err says why); it was not sent.
	NoticeStorage
)

// Notice reports something worth a log line or a status display.
type Notice struct {
	Kind       NoticeKind
	From       string
	Err        error
	Depth      int
	MissedFrom uint64
	MissedTo   uint64
	Epoch      uint64
	Added      []string
	// AddedBy are the identities of the members who asked for each
	// addition in Added: the sender of the Add proposal, which is the
	// committer for an Add inline in the commit (empty where not known),
	// in the same order.
	AddedBy []string
	Removed []string
	// RemovedBy are the identities of the members who asked for each
	// removal in Removed (the member itself when it left; empty where
	// not known), in the same order.
	RemovedBy []string
	Count     int

	// Winner and Loser, for a rollback: the identities of the committers
	// of the first epoch after the fork point on the branch the member
	// moved to and on the one it left (empty where not known, as for
	// epochs from before a restart).
	Winner, Loser string
}

// Identity returns the identity a leaf stands for: its credential's
// identity (basic) or leaf certificate (X.509).
func Identity(leaf *wire.LeafNode) string {
	switch leaf.Credential.Type {
	case wire.CredentialBasic:
		return string(leaf.Credential.Identity)
	case wire.CredentialX509:
		if len(leaf.Credential.Certificates) > 0 {
			return string(leaf.Credential.Certificates[0])
		}
	}
	return string(leaf.SignatureKey)
}
