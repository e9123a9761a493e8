package p2p

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// BenchmarkGossip measures publish-to-delivery latency and sustained
// throughput of 1 KiB messages on loopback, for Parley's layer and for raw
// go-libp2p-pubsub with default settings on a default go-libp2p host, in
// the same run and the same topology (a ring where each host dials the
// next three). Host 0 publishes; every other host receives.
//
//	go test -run '^$' -bench BenchmarkGossip -benchtime 200x ./p2p/
//
// latency: one message at a time, the next once all hosts have the last;
// reports p50 and p99 of every (message, receiver) delivery.
// throughput: up to 16 messages in flight; reports msgs/s delivered to all.
// burst: all b.N messages at once; shows what the queues drop ("lost").
func BenchmarkGossip(b *testing.B) {
	// Parley and raw of one configuration run back to back, so that a
	// change of load on the machine hits both alike.
	for _, transport := range []string{"tcp", "quic"} {
		for _, hosts := range []int{2, 10, 50} {
			for _, impl := range []string{"parley", "raw"} {
				b.Run(fmt.Sprintf("%s/hosts=%d/%s", transport, hosts, impl), func(b *testing.B) {
					c := newBenchCluster(b, impl, transport, hosts)
					b.Run("latency", c.latency)
					b.Run("throughput", c.throughput(benchWindow))
					b.Run("burst", c.throughput(0))
				})
			}
		}
	}
}

const (
	benchPayload = 1024
	benchWindow  = 16
	benchTopic   = "bench"
	benchLost    = 3 * time.Second
)

// benchMember is one host's side of the topic.
type benchMember struct {
	publish func(context.Context, []byte) error
	next    func(context.Context) ([]byte, error)
	peers   func() int
	dropped func() uint64 // nil for raw pubsub, which does not count
}

type benchCluster struct {
	members []benchMember
	run     atomic.Pointer[benchRun]
	runID   atomic.Uint64
}

// benchRun is the state of one measurement: payloads carry its id, so
// stragglers of an earlier run are ignored.
type benchRun struct {
	id        uint64
	want      int32
	delivered atomic.Int64
	given     []bool // messages already counted as lost
	mu        sync.Mutex
	samples   []time.Duration
	counts    []atomic.Int32
	complete  []chan struct{}
}

func newBenchCluster(b *testing.B, impl, transport string, hosts int) *benchCluster {
	b.Helper()
	listen := tcp4
	if transport == "quic" {
		listen = quic4
	}
	c := &benchCluster{}
	infos := make([]peer.AddrInfo, hosts)
	connectFns := make([]func(context.Context, peer.AddrInfo) error, hosts)
	for i := range hosts {
		switch impl {
		case "parley":
			n := startNode(b, nil, WithListenAddrs(listen), WithLogger(testLogger()))
			tp := join(b, n, benchTopic, nil)
			c.members = append(c.members, benchMember{
				publish: tp.Publish,
				next: func(ctx context.Context) ([]byte, error) {
					m, err := tp.Next(ctx)
					return m.Payload, err
				},
				peers:   func() int { return len(tp.Peers()) },
				dropped: func() uint64 { return n.Stats().Dropped() },
			})
			infos[i], connectFns[i] = n.AddrInfo(), n.Connect
		case "raw":
			h, m := rawMember(b, listen)
			c.members = append(c.members, m)
			infos[i] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
			connectFns[i] = h.Connect
		}
	}
	degree := make([]int, hosts)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for i := range hosts {
		for d := 1; d <= min(hosts-1, 3); d++ {
			j := (i + d) % hosts
			if err := connectFns[i](ctx, infos[j]); err != nil {
				b.Fatal(err)
			}
			degree[i]++
			degree[j]++
		}
	}
	eventually(b, waitLong, "topic peers", func() bool {
		for i, m := range c.members {
			if m.peers() < min(degree[i], hosts-1) {
				return false
			}
		}
		return true
	})
	c.startReaders(b)
	c.warmUp(b)
	return c
}

// rawMember is go-libp2p-pubsub with default settings on a default host.
func rawMember(b *testing.B, listen string) (host.Host, benchMember) {
	h, err := libp2p.New(libp2p.ListenAddrStrings(listen))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		b.Fatal(err)
	}
	tp, err := ps.Join(benchTopic)
	if err != nil {
		b.Fatal(err)
	}
	sub, err := tp.Subscribe()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); h.Close() })
	return h, benchMember{
		publish: func(ctx context.Context, p []byte) error { return tp.Publish(ctx, p) },
		next: func(ctx context.Context) ([]byte, error) {
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return nil, err
				}
				if m.ReceivedFrom != h.ID() {
					return m.Data, nil
				}
			}
		},
		peers: func() int { return len(tp.ListPeers()) },
	}
}

func (c *benchCluster) startReaders(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Go(func() {
			for {
				p, err := m.next(ctx)
				if err != nil {
					return
				}
				c.deliver(p)
			}
		})
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
}

func (c *benchCluster) deliver(p []byte) {
	now := time.Now()
	r := c.run.Load()
	if r == nil || len(p) < 24 || binary.BigEndian.Uint64(p) != r.id {
		return
	}
	seq := binary.BigEndian.Uint64(p[8:])
	sent := time.Unix(0, int64(binary.BigEndian.Uint64(p[16:])))
	if seq >= uint64(len(r.counts)) {
		return
	}
	r.mu.Lock()
	r.samples = append(r.samples, now.Sub(sent))
	r.mu.Unlock()
	r.delivered.Add(1)
	if r.counts[seq].Add(1) == r.want {
		close(r.complete[seq])
	}
}

func (c *benchCluster) newRun(n int) *benchRun {
	r := &benchRun{
		id:       c.runID.Add(1),
		want:     int32(len(c.members) - 1),
		samples:  make([]time.Duration, 0, n*(len(c.members)-1)),
		counts:   make([]atomic.Int32, n),
		given:    make([]bool, n),
		complete: make([]chan struct{}, n),
	}
	for i := range r.complete {
		r.complete[i] = make(chan struct{})
	}
	c.run.Store(r)
	return r
}

func (c *benchCluster) payload(r *benchRun, seq int) []byte {
	p := make([]byte, benchPayload)
	binary.BigEndian.PutUint64(p, r.id)
	binary.BigEndian.PutUint64(p[8:], uint64(seq))
	binary.BigEndian.PutUint64(p[16:], uint64(time.Now().UnixNano()))
	return p
}

// warmUp publishes until one message reaches every host.
func (c *benchCluster) warmUp(b *testing.B) {
	for attempt := range 30 {
		r := c.newRun(1)
		if err := c.members[0].publish(context.Background(), c.payload(r, 0)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-r.complete[0]:
			return
		case <-time.After(time.Second):
			b.Logf("warm-up attempt %d incomplete", attempt)
		}
	}
	b.Fatal("mesh never carried a message to every host")
}

func (c *benchCluster) latency(b *testing.B) {
	r := c.newRun(b.N)
	lost := 0
	b.ResetTimer()
	for i := range b.N {
		if err := c.members[0].publish(context.Background(), c.payload(r, i)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-r.complete[i]:
		case <-time.After(benchLost):
			lost++
		}
	}
	b.StopTimer()
	c.report(b, r, lost)
}

// throughput publishes b.N messages with at most window in flight (0: no
// limit, a burst) and reports the rate of messages delivered to every host.
func (c *benchCluster) throughput(window int) func(*testing.B) {
	return func(b *testing.B) {
		r := c.newRun(b.N)
		dropped := c.dropped()
		lost := 0
		wait := func(i int, ctx context.Context) {
			select {
			case <-r.complete[i]:
			case <-ctx.Done():
				r.given[i] = true
				lost++
			}
		}
		start := time.Now()
		b.ResetTimer()
		for i := range b.N {
			if window > 0 && i >= window {
				ctx, cancel := context.WithTimeout(context.Background(), benchLost)
				wait(i-window, ctx)
				cancel()
			}
			if err := c.members[0].publish(context.Background(), c.payload(r, i)); err != nil {
				b.Fatal(err)
			}
		}
		lost += r.drain(benchLost)
		b.StopTimer()
		b.ReportMetric(float64(b.N-lost)/time.Since(start).Seconds(), "msgs/s")
		if c.members[0].dropped != nil {
			b.ReportMetric(float64(c.dropped()-dropped), "dropped")
		}
		c.report(b, r, lost)
	}
}

// dropped sums the queue drops every host counted.
func (c *benchCluster) dropped() uint64 {
	var sum uint64
	for _, m := range c.members {
		if m.dropped != nil {
			sum += m.dropped()
		}
	}
	return sum
}

// drain waits until every message reached every host, or until no
// delivery at all happened for idle, and returns how many messages did not
// reach every host (not counting those already given up).
func (r *benchRun) drain(idle time.Duration) int {
	last, lastChange := r.delivered.Load(), time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := 0
		for i, done := range r.complete {
			select {
			case <-done:
			default:
				if !r.given[i] {
					missing++
				}
			}
		}
		if missing == 0 {
			return 0
		}
		if d := r.delivered.Load(); d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > idle {
			return missing
		}
		<-tick.C
	}
}

func (c *benchCluster) report(b *testing.B, r *benchRun, lost int) {
	r.mu.Lock()
	s := slices.Clone(r.samples)
	r.mu.Unlock()
	slices.Sort(s)
	if len(s) > 0 {
		b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(s[min(len(s)-1, len(s)*99/100)].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(float64(lost), "lost")
}
