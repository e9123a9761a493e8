package p2p

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// GossipParams returns the gossipsub parameters Parley runs with. They are
// node-wide (one node is in small and large groups at once), chosen so that
// both work:
//
//   - D=6, Dlo=4, Dhi=10: a group of up to 7 members is a full mesh, so every
//     message takes one hop. Larger groups keep 4 to 10 mesh links per node
//     (a phone-class budget) and reach 10,000 members in about 5 hops
//     (log base 6).
//   - Dscore=4, Dout=2: when the mesh is trimmed, the 4 best-scoring peers and
//     2 outbound links are kept, so an attacker who fills our inbound slots
//     cannot take over the mesh.
//   - HistoryLength=6, HistoryGossip=4 (defaults 5 and 3): a message is
//     announced by IHAVE for 4 heartbeats rather than 3, giving a member that
//     missed a commit one more chance to pull it before it must sync.
//   - Flood publishing is on (pubsub v0.19 has it off by default): the
//     author sends to every connected topic peer above the publish
//     threshold, which in a small group is everyone. Without it a message
//     published before the next heartbeat grafts a newly subscribed peer
//     never reaches that peer: it is in no mesh yet, and once grafted it gets
//     no IHAVE for what it missed.
//   - HeartbeatInterval stays at 1s: faster costs battery for little gain.
//
// Peer scoring (see peerScoreParams) prunes peers that send invalid messages.
func GossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D = 6
	p.Dlo = 4
	p.Dhi = 10
	p.Dscore = 4
	p.Dout = 2
	p.HistoryLength = 6
	p.HistoryGossip = 4
	return p
}

// Score thresholds. A peer's score is the sum of its topic scores (capped at
// topicScoreCap) and the penalties below.
const (
	// gossipThreshold: below it we neither gossip to nor accept gossip from
	// the peer.
	gossipThreshold = -500
	// publishThreshold: below it we do not flood-publish to the peer.
	publishThreshold = -1000
	// graylistThreshold: below it every RPC from the peer is ignored.
	graylistThreshold = -2500
	// acceptPXThreshold: peer exchange is taken only from peers that earned
	// this much (about 10 minutes of useful first deliveries).
	acceptPXThreshold = 10
	// opportunisticGraftThreshold: when the median mesh score falls below
	// it, better peers are grafted.
	opportunisticGraftThreshold = 3
	// topicScoreCap bounds the positive score earned across all topics, so
	// good behaviour cannot bank enough to hide a flood of invalid messages.
	topicScoreCap = 50
	// invalidMessageWeight is P4: each invalid message counts, squared and
	// decaying over an hour. One gives -10 (any negative score prunes the peer
	// from our mesh at the next heartbeat), 7 pass the gossip threshold, 10
	// the publish threshold and 16 the graylist.
	invalidMessageWeight = -10
)

func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             gossipThreshold,
		PublishThreshold:            publishThreshold,
		GraylistThreshold:           graylistThreshold,
		AcceptPXThreshold:           acceptPXThreshold,
		OpportunisticGraftThreshold: opportunisticGraftThreshold,
	}
}

// peerScoreParams are the node-wide score parameters; topics get theirs from
// topicScoreParams when joined.
func peerScoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:            make(map[string]*pubsub.TopicScoreParams),
		TopicScoreCap:     topicScoreCap,
		AppSpecificScore:  func(peer.ID) float64 { return 0 },
		AppSpecificWeight: 1,
		// P6: more than 8 peers behind one IP is suspicious on the internet.
		// Loopback is exempt so that tests and benchmarks run many hosts.
		IPColocationFactorWeight:    -10,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: loopbackNets(),
		// P7: regrafting during backoff, broken IWANT promises.
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             pubsub.DefaultDecayInterval,
		DecayToZero:               pubsub.DefaultDecayToZero,
		// A peer that disconnects keeps its (bad) score for 30 minutes.
		RetainScore: 30 * time.Minute,
	}
}

// topicScoreParams scores one group topic. Mesh delivery penalties (P3,
// P3b) are off: group traffic is bursty and often silent for hours, and the
// penalty would punish honest peers of a quiet group.
func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight: 1,
		// P1: up to +10 for an hour in the mesh.
		TimeInMeshWeight:  10.0 / 3600,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     3600,
		// P2: up to +20 for first deliveries, decaying over 10 minutes.
		FirstMessageDeliveriesWeight: 1,
		FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:    20,
		// P3, P3b off (see above); decays must still be valid numbers.
		MeshMessageDeliveriesDecay:      pubsub.ScoreParameterDecay(time.Minute),
		MeshMessageDeliveriesThreshold:  1,
		MeshMessageDeliveriesCap:        1,
		MeshMessageDeliveriesWindow:     10 * time.Millisecond,
		MeshMessageDeliveriesActivation: time.Minute,
		MeshFailurePenaltyDecay:         pubsub.ScoreParameterDecay(time.Minute),
		// P4: invalid messages.
		InvalidMessageDeliveriesWeight: invalidMessageWeight,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
	}
}

func loopbackNets() []*net.IPNet {
	var nets []*net.IPNet
	for _, s := range []string{"127.0.0.0/8", "::1/128"} {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			panic(err)
		}
		nets = append(nets, n)
	}
	return nets
}

// gossipOverhead is room above the payload limit for the pubsub envelope:
// topic, sender, sequence number, signature and protobuf framing.
const gossipOverhead = 16 << 10
