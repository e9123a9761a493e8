package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/prometheus/client_golang/prometheus"
)

// WithMetrics registers the node's metrics with reg: libp2p's own (swarm,
// identify, AutoNAT, autorelay, relay service, hole punching, event bus,
// resource manager; the libp2p_* series) and gossipsub's, which pubsub
// does not export and this package counts (the parley_gossipsub_* series,
// see gossipMetrics). Without it libp2p's metrics are off: libp2p would
// otherwise register them with prometheus.DefaultRegisterer.
//
// libp2p keeps its collectors in package variables and registers the same
// ones with every registry it is given, ignoring a second registration
// with the same registry (go-libp2p's metricshelper.RegisterCollectors).
// So several nodes in one process each with a registry of its own do not
// panic, but each registry shows the libp2p_* figures of the whole
// process: counters summed over the nodes, gauges as the last node to
// move them left them. The daemon runs one node per process, where the
// two are the same. The parley_gossipsub_* series are the node's own, so
// a registry serves one running node: Start fails on a registry another
// running node uses.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(n *Node) error {
		if reg == nil {
			return fmt.Errorf("%w: nil metrics registerer", ErrBadOption)
		}
		n.metricsReg = reg
		return nil
	}
}

// gossipMetrics is a pubsub RawTracer that counts for Prometheus what an
// operator needs of gossipsub. Labels are bounded: never a peer ID or a
// topic (a topic is a group), only the fixed reasons pubsub gives. Pubsub
// calls it from its event loop (SendRPCCompleted from writers'
// goroutines); client_golang's counters are safe for both.
type gossipMetrics struct {
	delivered, duplicates, undeliverable prometheus.Counter
	rejected                             *prometheus.CounterVec
	peersAdded, peersRemoved             prometheus.Counter
	peers, topics                        prometheus.Gauge
	throttled                            prometheus.Counter
	grafts, prunes                       prometheus.Counter
	rpcs                                 *prometheus.CounterVec
	rpcsDropped, msgsDropped             prometheus.Counter
	all                                  []prometheus.Collector
}

var _ pubsub.RawTracer = (*gossipMetrics)(nil)

// rejectReasons are the label values of the rejected counter, keyed by
// pubsub's reasons (RejectMessage documents them as the only ones).
var rejectReasons = map[string]string{
	pubsub.RejectBlacklstedPeer:      "blacklisted_peer",
	pubsub.RejectBlacklistedSource:   "blacklisted_source",
	pubsub.RejectMissingSignature:    "missing_signature",
	pubsub.RejectUnexpectedSignature: "unexpected_signature",
	pubsub.RejectUnexpectedAuthInfo:  "unexpected_auth_info",
	pubsub.RejectInvalidSignature:    "invalid_signature",
	pubsub.RejectValidationQueueFull: "validation_queue_full",
	pubsub.RejectValidationThrottled: "validation_throttled",
	pubsub.RejectValidationFailed:    "validation_failed",
	pubsub.RejectValidationIgnored:   "validation_ignored",
	pubsub.RejectSelfOrigin:          "self_origin",
}

// otherReason labels a reason a later pubsub may add, so that the label
// set stays bounded whatever it sends.
const otherReason = "other"

func newGossipMetrics() *gossipMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "parley", Subsystem: "gossipsub", Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "parley", Subsystem: "gossipsub", Name: name, Help: help})
	}
	m := &gossipMetrics{
		delivered:     counter("messages_delivered_total", "Messages from other peers that passed validation."),
		duplicates:    counter("messages_duplicate_total", "Copies of messages already seen (normal in gossip)."),
		undeliverable: counter("messages_undeliverable_total", "Messages dropped because a topic's reader fell behind."),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "parley", Subsystem: "gossipsub", Name: "messages_rejected_total",
			Help: "Messages from other peers rejected or ignored, by pubsub's reason.",
		}, []string{"reason"}),
		peersAdded:   counter("peers_added_total", "Peers gossipsub opened a stream to."),
		peersRemoved: counter("peers_removed_total", "Peers gossipsub dropped (disconnected, dead stream or blacklisted)."),
		peers:        gauge("peers", "Peers gossipsub has a stream to now."),
		topics:       gauge("topics", "Topics joined (one per group)."),
		throttled:    counter("peers_throttled_total", "Times the peer gater throttled a peer."),
		grafts:       counter("grafts_total", "Peers added to this node's topic meshes."),
		prunes:       counter("prunes_total", "Peers removed from this node's topic meshes."),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "parley", Subsystem: "gossipsub", Name: "rpcs_total",
			Help: "RPCs received (in) and queued to peers (out).",
		}, []string{"direction"}),
		rpcsDropped: counter("rpcs_dropped_total", "RPCs dropped because a peer's outbound queue was full."),
		msgsDropped: counter("messages_dropped_total", "Messages in the RPCs dropped because a peer's outbound queue was full."),
	}
	// Every series exists from the start, at zero, so that a rate over a
	// quiet node reads 0 and not "no data".
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	m.rejected.WithLabelValues(otherReason)
	m.rpcs.WithLabelValues("in")
	m.rpcs.WithLabelValues("out")
	m.all = []prometheus.Collector{m.delivered, m.duplicates, m.undeliverable, m.rejected, m.peersAdded,
		m.peersRemoved, m.peers, m.topics, m.throttled, m.grafts, m.prunes, m.rpcs, m.rpcsDropped, m.msgsDropped}
	return m
}

// Describe and Collect make the set one collector, registered at once.
func (m *gossipMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

func (m *gossipMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// registerGossipMetrics registers a new set with reg. The set lives as
// long as the node runs (stopServices unregisters it), so a node built
// again on the same registry after the first failed to start (the daemon
// retries on fresh ports) registers its own; two running nodes cannot
// share a registry, as their series would be the same.
func registerGossipMetrics(reg prometheus.Registerer) (*gossipMetrics, error) {
	m := newGossipMetrics()
	if err := reg.Register(m); err != nil {
		return nil, fmt.Errorf("p2p: register gossipsub metrics: %w", err)
	}
	return m, nil
}

// DeliverMessage is called for messages from other peers only.
func (m *gossipMetrics) DeliverMessage(*pubsub.Message) { m.delivered.Inc() }

// RejectMessage is called for messages from other peers only.
func (m *gossipMetrics) RejectMessage(_ *pubsub.Message, reason string) {
	r, ok := rejectReasons[reason]
	if !ok {
		r = otherReason
	}
	m.rejected.WithLabelValues(r).Inc()
}

func (m *gossipMetrics) DuplicateMessage(*pubsub.Message)     { m.duplicates.Inc() }
func (m *gossipMetrics) UndeliverableMessage(*pubsub.Message) { m.undeliverable.Inc() }

func (m *gossipMetrics) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	m.rpcsDropped.Inc()
	m.msgsDropped.Add(float64(len(rpc.GetPublish())))
}

// OnNewOutboundStream and OnClosedOutboundStream are pubsub adding and
// removing a peer: the one stream it keeps to each peer that speaks it.
func (m *gossipMetrics) OnNewOutboundStream(peer.ID, protocol.ID) {
	m.peersAdded.Inc()
	m.peers.Inc()
}

func (m *gossipMetrics) OnClosedOutboundStream(peer.ID) {
	m.peersRemoved.Inc()
	m.peers.Dec()
}

func (m *gossipMetrics) Join(string)                                          { m.topics.Inc() }
func (m *gossipMetrics) Leave(string)                                         { m.topics.Dec() }
func (m *gossipMetrics) Graft(peer.ID, string)                                { m.grafts.Inc() }
func (m *gossipMetrics) Prune(peer.ID, string)                                { m.prunes.Inc() }
func (m *gossipMetrics) ThrottlePeer(peer.ID)                                 { m.throttled.Inc() }
func (m *gossipMetrics) RecvRPC(*pubsub.RPC)                                  { m.rpcs.WithLabelValues("in").Inc() }
func (m *gossipMetrics) SendRPC(*pubsub.RPC, peer.ID)                         { m.rpcs.WithLabelValues("out").Inc() }
func (m *gossipMetrics) ValidateMessage(*pubsub.Message)                      {}
func (m *gossipMetrics) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

// hostMetrics is the libp2p option that sends the host's metrics to the
// node's registry, or turns them off: left alone, libp2p registers them
// with prometheus.DefaultRegisterer.
func (n *Node) hostMetrics() libp2p.Option {
	if n.metricsReg == nil {
		return libp2p.DisableMetrics()
	}
	return libp2p.PrometheusRegisterer(n.metricsReg)
}

// rcmgrMetrics are the resource manager's options for metrics. libp2p.New
// registers the resource manager's collectors with the host's registry
// (rcmgr.MustRegisterWith) and the manager reports to them through a
// StatsTraceReporter; without a registry nothing reads them, so the
// manager does not report at all.
func (n *Node) rcmgrMetrics() []rcmgr.Option {
	if n.metricsReg == nil {
		return []rcmgr.Option{rcmgr.WithMetricsDisabled()}
	}
	str, err := rcmgr.NewStatsTraceReporter()
	if err != nil {
		// It cannot fail (it returns an empty struct); should a later
		// libp2p make it fail, the manager's own default reporter remains.
		n.log.Warn("resource manager metrics reporter", "err", err)
		return nil
	}
	return []rcmgr.Option{rcmgr.WithTraceReporter(str)}
}

// holePunchTracer is the hole punching option: the log of each attempt
// (holePunchLog), and with a registry libp2p's hole punching metrics too.
// libp2p adds its metrics tracer as an option ahead of the caller's, and
// holepunch.WithTracer replaces it, so the two go in one option.
func (n *Node) holePunchTracer() holepunch.Option {
	if n.metricsReg == nil {
		return holepunch.WithTracer(holePunchLog{n.log})
	}
	mt := holepunch.NewMetricsTracer(holepunch.WithRegisterer(n.metricsReg))
	return holepunch.WithMetricsAndEventTracer(mt, holePunchLog{n.log})
}
