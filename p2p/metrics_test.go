package p2p

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsGoToEachNodesOwnRegistry runs two nodes in one process, each
// with a registry of its own: neither start panics on libp2p's collectors
// (registered with both registries), each registry carries libp2p's swarm
// and resource manager series and the node's own gossipsub counts, and
// nothing reaches prometheus.DefaultRegisterer.
func TestMetricsGoToEachNodesOwnRegistry(t *testing.T) {
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := startNode(t, nil, WithMetrics(regA))
	b := startNode(t, nil, WithMetrics(regB))
	off := startNode(t, nil) // libp2p's metrics off: nothing registered anywhere
	connect(t, a, b)
	connect(t, off, b)
	rejectBad := func(_ context.Context, _ peer.ID, payload []byte) ValidationResult {
		if bytes.HasPrefix(payload, []byte("bad")) {
			return Reject
		}
		return Accept
	}
	ta, tb := join(t, a, "group", nil), join(t, b, "group", rejectBad)
	inb := collect(t, tb)
	waitTopicPeers(t, []*Topic{ta, tb}, func(int) int { return 1 })
	ctx := context.Background()
	if err := ta.Publish(ctx, []byte("good")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "b delivers good", func() bool { return inb.has("good") })
	// Before the invalid message, which lowers a's score in b's eyes and
	// would keep it out of b's mesh.
	eventually(t, waitShort, "a grafted into b's mesh", func() bool {
		return sum(t, regB, "parley_gossipsub_grafts_total") >= 1
	})
	if err := ta.Publish(ctx, []byte("bad")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "b rejects bad", func() bool {
		return sum(t, regB, "parley_gossipsub_messages_rejected_total", "reason", "validation_failed") == 1
	})

	for _, c := range []struct {
		name   string
		labels []string
		reg    *prometheus.Registry
		min    float64
	}{
		{"libp2p_swarm_connections_opened_total", nil, regB, 1},
		{"libp2p_rcmgr_connections", []string{"scope", "system"}, regB, 1},
		{"libp2p_rcmgr_streams", nil, regB, 1},
		{"libp2p_rcmgr_limit", []string{"scope", "system", "resource", "conns"}, regB, 1},
		{"libp2p_identify_identify_total", nil, regB, 1},
		{"libp2p_eventbus_events_emitted_total", nil, regB, 1},
		{"parley_gossipsub_messages_delivered_total", nil, regB, 1},
		{"parley_gossipsub_peers_added_total", nil, regB, 1},
		{"parley_gossipsub_peers", nil, regB, 1},
		{"parley_gossipsub_topics", nil, regB, 1},
		{"parley_gossipsub_rpcs_total", []string{"direction", "in"}, regB, 1},
		{"parley_gossipsub_rpcs_dropped_total", nil, regB, 0},
		{"libp2p_swarm_connections_opened_total", nil, regA, 1},
		{"parley_gossipsub_rpcs_total", []string{"direction", "out"}, regA, 1},
	} {
		if !has(t, c.reg, c.name) {
			t.Errorf("no %s in the registry", c.name)
			continue
		}
		if got := sum(t, c.reg, c.name, c.labels...); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	// The gossipsub counts are each node's own: a delivered nothing (a
	// node never delivers its own messages) while b delivered one.
	if got := sum(t, regA, "parley_gossipsub_messages_delivered_total"); got != 0 {
		t.Errorf("a's delivered = %v, want 0 (b's delivery counted in a's registry?)", got)
	}

	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		name := f.GetName()
		if strings.HasPrefix(name, "libp2p_eventbus_") {
			// go-libp2p v0.51 builds AutoNAT v2's dialer as a blank host
			// (config.makeAutoNATV2Host), and blankhost.NewBlankHost gives
			// its event bus a metrics tracer with the default registerer,
			// whatever the options say (DisableMetrics included). They are
			// the same package-level collectors as in the node's registry.
			continue
		}
		if strings.HasPrefix(name, "libp2p_") || strings.HasPrefix(name, "parley_") {
			t.Errorf("%s is on the default registry", name)
		}
	}
}

// TestMetricsRegistryIsFreedAtClose: a running node's gossipsub series
// keep a second node off its registry, and Close lets the next one on (the
// daemon builds its node again on the same registry when the ports of its
// last run are taken).
func TestMetricsRegistryIsFreedAtClose(t *testing.T) {
	if _, err := New(newKey(t), WithMetrics(nil)); !errors.Is(err, ErrBadOption) {
		t.Errorf("WithMetrics(nil): got %v, want ErrBadOption", err)
	}
	reg := prometheus.NewRegistry()
	first := startNode(t, nil, WithMetrics(reg))
	second, err := New(newKey(t), append(testOptions(), WithMetrics(reg))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if err := second.Start(ctx); err == nil {
		second.Close()
		t.Fatal("a second running node started on the first one's registry")
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	startNode(t, nil, WithMetrics(reg))
	if !has(t, reg, "parley_gossipsub_peers") {
		t.Error("no gossipsub series after the second start")
	}
}

// has reports whether reg has a family called name.
func has(t *testing.T, reg prometheus.Gatherer, name string) bool {
	t.Helper()
	_, found := gathered(t, reg, name)
	return found
}

// sum adds up the values of the series of name whose labels include the
// given name, value pairs: counters and gauges by value, histograms by
// sample count.
func sum(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	total, _ := gathered(t, reg, name, labels...)
	return total
}

// gathered is sum, and whether reg has a family called name at all. (It
// names no client_model type, which this module uses only through
// client_golang.)
func gathered(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		var total float64
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue series
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
		return total, true
	}
	return 0, false
}
