package node

import (
	"net/http"
	"sync"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The node's metrics go through client_golang with a registry of the
// node's own (nothing on the global one): the Go runtime and process
// collectors, the node's counters and gauges read when scraped, the
// delivery latency histogram, and libp2p's collectors with the p2p
// layer's gossipsub counters (p2p.WithMetrics, given the registry when the
// host is built). Per-group series are labelled by the group's name, so
// their number is the number of groups this node is in. The list is in
// docs/METRICS.md.

// latencyBuckets are the upper bounds (seconds) of the delivery latency
// histogram: from a message's claimed send time to its delivery here.
var latencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// histogram is the delivery latency histogram, made on first use (the
// Node holds it by value).
type histogram struct {
	once sync.Once
	h    prometheus.Histogram
}

func (h *histogram) get() prometheus.Histogram {
	h.once.Do(func() {
		h.h = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_delivery_latency_seconds",
			Help:    "From a message's send time (sender's clock) to its delivery here.",
			Buckets: latencyBuckets,
		})
	})
	return h.h
}

// observeLatency records the delivery latency of a message sent at sent.
func (n *Node) observeLatency(sent time.Time) {
	if sent.IsZero() {
		return
	}
	n.latency.get().Observe(max(0, time.Since(sent).Seconds())) // 0: the sender's clock is ahead
}

// registry is the node's metrics registry, made on first use.
type registry struct {
	once sync.Once
	r    *prometheus.Registry
}

func (n *Node) registry() *prometheus.Registry {
	n.metrics.once.Do(func() {
		r := prometheus.NewRegistry()
		r.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			n.latency.get(),
			nodeCollector{n},
		)
		n.metrics.r = r
	})
	return n.metrics.r
}

// MetricsHandler serves the node's metrics in the Prometheus text format.
func (n *Node) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(n.registry(), promhttp.HandlerOpts{})
}

// nodeCollector reads the node's figures when scraped.
type nodeCollector struct{ n *Node }

var (
	descPeers      = prometheus.NewDesc("parley_peers", "Connected libp2p peers.", nil, nil)
	descGroups     = prometheus.NewDesc("parley_groups", "Groups this node is in or joining.", nil, nil)
	descStoreBytes = prometheus.NewDesc("parley_store_bytes", "What the store takes on disk (badger's figure, refreshed about once a minute).", nil, nil)
	descCounters   = map[string]*prometheus.Desc{
		"messages_in":       prometheus.NewDesc("parley_messages_in_total", "Envelopes received from group topics.", nil, nil),
		"messages_out":      prometheus.NewDesc("parley_messages_out_total", "Envelopes published to group topics.", nil, nil),
		"messages_rejected": prometheus.NewDesc("parley_messages_rejected_total", "Envelopes rejected by the topic validators.", nil, nil),
		"forks":             prometheus.NewDesc("parley_forks_total", "Second commits seen on an epoch.", nil, nil),
		"rollbacks":         prometheus.NewDesc("parley_rollbacks_total", "Moves to another branch.", nil, nil),
		"sync_requests":     prometheus.NewDesc("parley_sync_requests_total", "Catch-up requests sent.", nil, nil),
		"state_writes":      prometheus.NewDesc("parley_state_writes_total", "Durable writes of group state (one fsync each).", nil, nil),
		"state_outputs":     prometheus.NewDesc("parley_state_outputs_total", "Group loop outputs those writes carried (received and sent messages, ticks...).", nil, nil),
		"gossip_dropped":    prometheus.NewDesc("parley_gossip_dropped_total", "Messages the pubsub queues dropped.", nil, nil),
	}
	// Per-group series carry the group's name and the first
	// groupIDLabel hex digits of its id (two groups may share a name).
	groupLabels     = []string{"group", "id"}
	descGroupEpoch  = prometheus.NewDesc("parley_group_epoch", "The group's current epoch.", groupLabels, nil)
	descGroupFinal  = prometheus.NewDesc("parley_group_final_epoch", "The group's newest final epoch.", groupLabels, nil)
	descGroupMemb   = prometheus.NewDesc("parley_group_members", "Members of the group's current epoch.", groupLabels, nil)
	descGroupOnline = prometheus.NewDesc("parley_group_online_peers", "Members of the group connected now.", groupLabels, nil)
	descGroupOutbox = prometheus.NewDesc("parley_group_outbox", "Own messages whose epoch is not final yet.", groupLabels, nil)
	descGroupMiss   = prometheus.NewDesc("parley_group_missing_messages", "Messages other members' heads say exist that this member lacks.", groupLabels, nil)
	descGroupState  = prometheus.NewDesc("parley_group_state", "1 for the group's health state (ok, behind, stalled, syncing, offline, pending, removed, damaged).", []string{"group", "id", "state"}, nil)
)

// groupIDLabel is how many hex digits of a group's id label its series:
// as many as the CLI shows.
const groupIDLabel = 8

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPeers, descGroups, descStoreBytes, descGroupEpoch, descGroupFinal,
		descGroupMemb, descGroupOnline, descGroupOutbox, descGroupMiss, descGroupState} {
		ch <- d
	}
	for _, d := range descCounters {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(name string, v int64) {
		ch <- prometheus.MustNewConstMetric(descCounters[name], prometheus.CounterValue, float64(v))
	}
	n.mu.Lock()
	runners := make([]*groupRunner, 0, len(n.groups))
	for _, g := range n.groups {
		runners = append(runners, g)
	}
	n.mu.Unlock()
	gauge(descPeers, float64(len(n.p2p.Peers())))
	gauge(descGroups, float64(len(runners)))
	if lsm, vlog, other, err := n.st.Size(); err == nil {
		gauge(descStoreBytes, float64(lsm+vlog+other))
	}
	counter("messages_in", n.stats.messagesIn.Load())
	counter("messages_out", n.stats.messagesOut.Load())
	counter("messages_rejected", n.stats.rejected.Load())
	counter("forks", n.stats.forks.Load())
	counter("rollbacks", n.stats.rollbacks.Load())
	counter("sync_requests", n.stats.syncRequests.Load())
	counter("state_writes", n.stats.stateWrites.Load())
	counter("state_outputs", n.stats.stateOutputs.Load())
	counter("gossip_dropped", int64(n.p2p.Stats().Dropped()))
	for _, g := range runners {
		s := g.status()
		id := g.hexID[:groupIDLabel]
		gauge(descGroupEpoch, float64(s.Epoch), s.Name, id)
		gauge(descGroupFinal, float64(s.FinalEpoch), s.Name, id)
		gauge(descGroupMemb, float64(s.Members), s.Name, id)
		gauge(descGroupOnline, float64(s.OnlinePeers), s.Name, id)
		gauge(descGroupOutbox, float64(s.Outbox), s.Name, id)
		gauge(descGroupMiss, float64(s.Missing), s.Name, id)
		state, _, _ := api.Health(s)
		gauge(descGroupState, 1, s.Name, id, state)
	}
}
