package p2p

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ValidationResult is a validator's verdict on a gossip message.
type ValidationResult int

const (
	// Accept delivers the message and forwards it to other peers.
	Accept ValidationResult = iota
	// Reject drops the message and penalises the peer that sent it. Return
	// it only for messages no honest peer would send (bad signature, not a
	// member, malformed), never for messages that are merely stale.
	Reject
	// Ignore drops the message without penalty (for example an epoch we are
	// not in yet).
	Ignore
)

// Validator checks a gossip message before it is delivered or forwarded.
// author is the peer that signed the message, not the one that relayed it.
// It also runs on the node's own messages before Publish sends them (a
// rejection makes Publish fail). It runs on pubsub's validation goroutines
// and must be quick; it must not keep payload.
type Validator func(ctx context.Context, author peer.ID, payload []byte) ValidationResult

// MessageID identifies a gossip message: SHA-256 over a label, the topic
// and the payload. The same payload on the same topic has the same ID
// whoever signs or relays it, so duplicates are dropped.
type MessageID [32]byte

// String returns the ID in hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// Message is a gossip message delivered on a topic.
type Message struct {
	Topic        string
	ID           MessageID
	Author       peer.ID // signed the message
	ReceivedFrom peer.ID // relayed it to us
	Payload      []byte
}

// LogValue logs the message without its payload.
func (m Message) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("topic", m.Topic),
		slog.String("id", m.ID.String()[:16]),
		slog.String("peer", m.Author.String()),
		slog.Int("size", len(m.Payload)),
	)
}

const messageIDLabel = "parley p2p message id v1"

// messageID computes the MessageID of a pubsub message.
func messageID(m *pb.Message) string {
	id := computeMessageID(m.GetTopic(), m.GetData())
	return string(id[:])
}

func computeMessageID(topic string, payload []byte) MessageID {
	h := sha256.New()
	h.Write([]byte(messageIDLabel))
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(topic)))
	h.Write(l[:])
	h.Write([]byte(topic))
	h.Write(payload)
	var id MessageID
	h.Sum(id[:0])
	return id
}

// validatorConcurrency bounds the validations of one topic running at
// once. A validator may wait for its group's loop (Parley's does, up to
// the loop's queue of 1,024), and the node's own publishes are validated
// within the same bound, so it is well above that queue.
const validatorConcurrency = 4096

// maxTopicsPerPeer bounds the subscriptions one peer may announce to us.
const maxTopicsPerPeer = 1024

func (n *Node) newPubSub() (*pubsub.PubSub, error) {
	opts := []pubsub.Option{
		pubsub.WithLogger(n.pubsubLogger()),
		pubsub.WithRPCLogger(n.pubsubLogger()),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMaxMessageSize(n.gossipLimit + gossipOverhead),
		pubsub.WithPeerOutboundQueueSize(n.queues.Outbound),
		pubsub.WithValidateQueueSize(n.queues.Validation),
		pubsub.WithGossipSubParams(n.gossipParams),
		pubsub.WithPeerExchange(true),
		pubsub.WithFloodPublish(true),
		pubsub.WithRawTracer(n.tracer),
		pubsub.WithPeerScore(peerScoreParams(), peerScoreThresholds()),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(n.storeScores), n.scoreEvery),
		pubsub.WithSubscriptionFilter(pubsub.WrapLimitSubscriptionFilter(
			pubsub.NewRegexpSubscriptionFilter(regexp.MustCompile(``)), maxTopicsPerPeer)),
	}
	if n.gossip != nil {
		opts = append(opts, pubsub.WithRawTracer(n.gossip))
	}
	ps, err := pubsub.NewGossipSub(n.ctx, n.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: gossipsub: %w", err)
	}
	return ps, nil
}

func (n *Node) storeScores(m map[peer.ID]float64) {
	n.scores.Store(&m)
}

// Topic is a joined gossip topic: one per group.
type Topic struct {
	n      *Node
	name   string
	pt     *pubsub.Topic
	sub    *pubsub.Subscription
	evh    *pubsub.TopicEventHandler
	ctx    context.Context // cancelled by Leave and by Node.Close
	cancel context.CancelFunc
	once   sync.Once
}

// rejoinDelay is how long after leaving a topic a Join waits (see Join).
const rejoinDelay = 100 * time.Millisecond

// Join subscribes to a topic, with v checking every message on it (nil
// accepts everything). The topic name comes from the caller; Parley derives
// it from group secrets.

func (n *Node) Join(name string, v Validator) (*Topic, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty topic name", ErrBadOption)
	}
	// Leaving a topic closes gossipsub's connection-manager tag for it,
	// and the connection manager removes the tag's name on a goroutine of
	// its own: a Join right after a Leave found the name still taken,
	// and the topic went without its tag (a warning for every message
	// delivered) for the life of the node. Wait for the removal.
	n.mu.Lock()
	wait := rejoinDelay - time.Since(n.left[name])
	n.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return nil, ErrClosed
	case !n.started:
		return nil, ErrNotStarted
	case n.topics[name] != nil:
		return nil, fmt.Errorf("%w: %s", ErrTopicJoined, name)
	}
	if err := n.ps.RegisterTopicValidator(name, n.wrapValidator(v),
		pubsub.WithValidatorTimeout(n.validatorTimeout),
		pubsub.WithValidatorConcurrency(validatorConcurrency)); err != nil {
		return nil, fmt.Errorf("p2p: topic %s validator: %w", name, err)
	}
	t, err := n.join(name)
	if err != nil {
		n.ps.UnregisterTopicValidator(name)
		return nil, err
	}
	n.topics[name] = t
	n.goTracked(t.forwardEvents)
	return t, nil
}

func (n *Node) join(name string) (*Topic, error) {
	pt, err := n.ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("p2p: join %s: %w", name, err)
	}
	if err := pt.SetScoreParams(topicScoreParams()); err != nil {
		pt.Close()
		return nil, fmt.Errorf("p2p: topic %s score: %w", name, err)
	}
	self := n.host.ID()
	sub, err := pt.Subscribe(
		pubsub.WithBufferSize(n.queues.Subscription),
		pubsub.WithMessageFilter(func(m *pubsub.Message) bool { return m.ReceivedFrom != self }),
	)
	if err != nil {
		pt.Close()
		return nil, fmt.Errorf("p2p: subscribe %s: %w", name, err)
	}
	evh, err := pt.EventHandler()
	if err != nil {
		sub.Cancel()
		pt.Close()
		return nil, fmt.Errorf("p2p: topic %s events: %w", name, err)
	}
	ctx, cancel := context.WithCancel(n.ctx)
	return &Topic{n: n, name: name, pt: pt, sub: sub, evh: evh, ctx: ctx, cancel: cancel}, nil
}

func (n *Node) wrapValidator(v Validator) pubsub.ValidatorEx {
	limit := n.gossipLimit
	return func(ctx context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if len(m.GetData()) > limit {
			return pubsub.ValidationReject
		}
		if v == nil {
			return pubsub.ValidationAccept
		}
		switch v(ctx, m.GetFrom(), m.GetData()) {
		case Accept:
			return pubsub.ValidationAccept
		case Ignore:
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationReject
	}
}

// Name returns the topic name.
func (t *Topic) Name() string { return t.name }

// Publish signs payload and sends it to the topic. Payloads over the gossip
// size limit are refused with ErrPayloadTooLarge: send them with
// Node.Request instead.
func (t *Topic) Publish(ctx context.Context, payload []byte) error {
	if len(payload) > t.n.gossipLimit {
		return fmt.Errorf("%w: %d > %d bytes", ErrPayloadTooLarge, len(payload), t.n.gossipLimit)
	}
	if t.ctx.Err() != nil {
		return ErrTopicClosed
	}
	if err := t.pt.Publish(ctx, payload); err != nil {
		if errors.Is(err, pubsub.ErrTopicClosed) {
			return ErrTopicClosed
		}
		return fmt.Errorf("p2p: publish on %s: %w", t.name, err)
	}
	t.n.stats.published.Add(1)
	return nil
}

// Next waits for the next message from another peer.
func (t *Topic) Next(ctx context.Context) (Message, error) {
	m, err := t.sub.Next(ctx)
	if err != nil {
		if errors.Is(err, pubsub.ErrSubscriptionCancelled) {
			return Message{}, ErrTopicClosed
		}
		return Message{}, err
	}
	var id MessageID
	copy(id[:], m.ID)
	return Message{
		Topic:        t.name,
		ID:           id,
		Author:       m.GetFrom(),
		ReceivedFrom: m.ReceivedFrom,
		Payload:      m.GetData(),
	}, nil
}

// Peers returns the connected peers subscribed to the topic.
func (t *Topic) Peers() []peer.ID {
	return t.pt.ListPeers()
}

// Leave unsubscribes and forgets the topic. Next then returns
// ErrTopicClosed.
func (t *Topic) Leave() error {
	var err error
	t.once.Do(func() {
		t.cancel()
		t.evh.Cancel()
		t.sub.Cancel()
		err = t.pt.Close()
		t.n.ps.UnregisterTopicValidator(t.name)
		t.n.mu.Lock()
		delete(t.n.topics, t.name)
		t.n.left[t.name] = time.Now()
		t.n.mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("p2p: leave %s: %w", t.name, err)
	}
	return nil
}

// forwardEvents turns topic peer events into node events until Leave.
func (t *Topic) forwardEvents() {
	for {
		pe, err := t.evh.NextPeerEvent(t.ctx)
		if err != nil {
			return
		}
		ev := Event{Type: EventTopicPeerJoined, Peer: pe.Peer, Topic: t.name}
		if pe.Type == pubsub.PeerLeave {
			ev.Type = EventTopicPeerLeft
		}
		select {
		case t.n.topicEvt <- ev:
		case <-t.ctx.Done():
			return
		}
	}
}
