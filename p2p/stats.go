package p2p

import (
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Stats counts what the node's gossip layer did, and above all what it
// dropped: a dropped commit stalls a group until it is synced, so every
// queue overflow is counted here.
type Stats struct {
	// Published counts messages this node published.
	Published uint64
	// Delivered counts messages from other peers that passed validation.
	Delivered uint64
	// Rejected counts messages a validator (or the size limit) rejected.
	Rejected uint64
	// Ignored counts messages a validator ignored or that timed out.
	Ignored uint64
	// Duplicates counts copies of messages already seen (normal in gossip).
	Duplicates uint64

	// OutboundRPCsDropped counts RPCs dropped because a peer's outbound
	// queue was full; OutboundMessagesDropped counts the messages in them.
	OutboundRPCsDropped     uint64
	OutboundMessagesDropped uint64
	// ValidationQueueDropped counts messages dropped because the validation
	// queue was full.
	ValidationQueueDropped uint64
	// ValidationThrottled counts messages dropped because too many
	// validations were running.
	ValidationThrottled uint64
	// SubscriptionDropped counts messages dropped because a topic's reader
	// (Topic.Next) fell behind.
	SubscriptionDropped uint64
	// EventsDropped counts events dropped because a watcher fell behind.
	EventsDropped uint64

	// MeshGrafts and MeshPrunes count peers added to and removed from our
	// topic meshes (a peer whose score turns negative is pruned).
	MeshGrafts uint64
	MeshPrunes uint64
}

// Dropped sums every drop of a valid message.
func (s Stats) Dropped() uint64 {
	return s.OutboundMessagesDropped + s.ValidationQueueDropped + s.ValidationThrottled + s.SubscriptionDropped
}

type counters struct {
	published, delivered, rejected, ignored, duplicates   atomic.Uint64
	rpcDropped, msgDropped, valQueueDropped, valThrottled atomic.Uint64
	subDropped, eventsDropped, grafts, prunes             atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Published:               c.published.Load(),
		Delivered:               c.delivered.Load(),
		Rejected:                c.rejected.Load(),
		Ignored:                 c.ignored.Load(),
		Duplicates:              c.duplicates.Load(),
		OutboundRPCsDropped:     c.rpcDropped.Load(),
		OutboundMessagesDropped: c.msgDropped.Load(),
		ValidationQueueDropped:  c.valQueueDropped.Load(),
		ValidationThrottled:     c.valThrottled.Load(),
		SubscriptionDropped:     c.subDropped.Load(),
		EventsDropped:           c.eventsDropped.Load(),
		MeshGrafts:              c.grafts.Load(),
		MeshPrunes:              c.prunes.Load(),
	}
}

// dropTracer is a pubsub RawTracer that counts. Pubsub calls it
// synchronously from its event loop, so it only touches atomics.
type dropTracer struct{ c *counters }

var _ pubsub.RawTracer = (*dropTracer)(nil)

// DeliverMessage is called for messages from other peers only.
func (t *dropTracer) DeliverMessage(*pubsub.Message) { t.c.delivered.Add(1) }

func (t *dropTracer) RejectMessage(msg *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull:
		t.c.valQueueDropped.Add(1)
	case pubsub.RejectValidationThrottled:
		t.c.valThrottled.Add(1)
	case pubsub.RejectValidationIgnored:
		t.c.ignored.Add(1)
	default:
		t.c.rejected.Add(1)
	}
}

func (t *dropTracer) DuplicateMessage(*pubsub.Message) { t.c.duplicates.Add(1) }

func (t *dropTracer) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	t.c.rpcDropped.Add(1)
	t.c.msgDropped.Add(uint64(len(rpc.GetPublish())))
}

func (t *dropTracer) UndeliverableMessage(*pubsub.Message) { t.c.subDropped.Add(1) }

func (t *dropTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *dropTracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *dropTracer) Join(string)                                          {}
func (t *dropTracer) Leave(string)                                         {}
func (t *dropTracer) Graft(peer.ID, string)                                { t.c.grafts.Add(1) }
func (t *dropTracer) Prune(peer.ID, string)                                { t.c.prunes.Add(1) }
func (t *dropTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *dropTracer) ThrottlePeer(peer.ID)                                 {}
func (t *dropTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *dropTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *dropTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
