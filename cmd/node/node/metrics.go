package node

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// latencyBuckets are the upper bounds (seconds) of the delivery latency
// histogram: from a message's claimed send time to its delivery here.
var latencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// histogram is a Prometheus-style cumulative histogram.
type histogram struct {
	mu     sync.Mutex
	counts []uint64 // per bucket, then +Inf
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = make([]uint64, len(latencyBuckets)+1)
	}
	i := sort.SearchFloat64s(latencyBuckets, v)
	h.counts[i]++
	h.sum += v
	h.n++
}

// observeLatency records the delivery latency of a message sent at sent.
func (n *Node) observeLatency(sent time.Time) {
	if sent.IsZero() {
		return
	}
	d := time.Since(sent).Seconds()
	if d < 0 {
		d = 0 // the sender's clock is ahead
	}
	n.latency.observe(d)
}

// MetricsHandler serves the node's figures in the Prometheus text format:
// peers, groups, messages in and out, rejected messages, forks, rollbacks,
// catch-up requests, and the delivery latency histogram.
func (n *Node) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		metric := func(name, kind, help string, v float64) {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, kind, name, v)
		}
		n.mu.Lock()
		groups := len(n.groups)
		var writes, outputs int64
		for _, g := range n.groups {
			writes += g.writes.Load()
			outputs += g.outputs.Load()
		}
		n.mu.Unlock()
		metric("parley_peers", "gauge", "Connected libp2p peers.", float64(len(n.p2p.Peers())))
		metric("parley_groups", "gauge", "Groups this node is in or joining.", float64(groups))
		metric("parley_messages_in_total", "counter", "Envelopes received from group topics.", float64(n.stats.messagesIn.Load()))
		metric("parley_messages_out_total", "counter", "Envelopes published to group topics.", float64(n.stats.messagesOut.Load()))
		metric("parley_messages_rejected_total", "counter", "Envelopes rejected by the topic validators.", float64(n.stats.rejected.Load()))
		metric("parley_forks_total", "counter", "Second commits seen on an epoch.", float64(n.stats.forks.Load()))
		metric("parley_rollbacks_total", "counter", "Moves to another branch.", float64(n.stats.rollbacks.Load()))
		metric("parley_sync_requests_total", "counter", "Catch-up requests sent.", float64(n.stats.syncRequests.Load()))
		metric("parley_state_writes_total", "counter", "Durable writes of group state (one fsync each).", float64(writes))
		metric("parley_state_outputs_total", "counter", "Group loop outputs those writes carried (received and sent messages, ticks...).", float64(outputs))
		metric("parley_gossip_dropped_total", "counter", "Messages the pubsub queues dropped.", float64(n.p2p.Stats().Dropped()))
		h := &n.latency
		h.mu.Lock()
		name := "parley_delivery_latency_seconds"
		fmt.Fprintf(&b, "# HELP %s From a message's send time (sender's clock) to its delivery.\n# TYPE %s histogram\n", name, name)
		var cum uint64
		for i, le := range latencyBuckets {
			if h.counts != nil {
				cum += h.counts[i]
			}
			fmt.Fprintf(&b, "%s_bucket{le=\"%g\"} %d\n", name, le, cum)
		}
		fmt.Fprintf(&b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.n, name, h.sum, name, h.n)
		h.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, b.String())
	})
}
