package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/p2p"
	"github.com/parley-p2p/parley/store"
)

// Benchmarks of the whole node (issue 17): real nodes, each with its own
// badger store in a temp directory and its own libp2p host on loopback TCP,
// configured as the daemon runs them (default tick interval), beside the
// floors measured in the same run:
//
//	go test -run XXX -bench 'DeliveryLatency|Throughput' -benchtime 200x -count 3 ./cmd/node/node/
//
// Sizes are 2 and 5 members; PARLEY_BENCH_LARGE=1 adds 20 members, which
// is too heavy for a 2-core machine (20 daemons, each with its store and
// host, in one process). PARLEY_BENCH_LOG=1 logs every benchmark node at
// debug level to standard error, each line with its node's name.
//
// Member 0 created the group, invited the others and is the only sender;
// every member is a contact of every other, so the nodes connect in a
// full mesh, as the raw gossipsub floor's hosts do.
//
// Sub-benchmarks and what they report:
//
//	members=N                    the node: Node.Send at member 0 to the
//	                             EventMessage on a Subscribe channel of
//	                             each receiver (p50-ms, p99-ms per
//	                             receiver and message; send-p50-ms is
//	                             the Send call itself)
//	members=N/inflight=16        (throughput) the node with up to 16
//	                             messages in flight, as many Send calls
//	                             at once, as the raw floor has 16
//	                             Publishes in flight; outputs/write is
//	                             how many loop outputs each durable write
//	                             of the receivers carried, and
//	                             sender-outputs/write the sender's;
//	                             cpu-µs/msg is the CPU time (user and
//	                             system) of the whole process, all its
//	                             members and the benchmark, per message;
//	                             p50-ms and p99-ms are the latency under
//	                             that load (the rate is 16 over it)
//	members=N/inflight=128       the same, deep enough that the node's
//	                             work bounds the rate, not the latency
//	members=N/senders=all/inflight=16
//	                             every member sends, each with up to 16
//	                             messages in flight, and each message
//	                             must reach the N-1 others
//	floor=gossipsub/members=N    go-libp2p-pubsub with default settings on
//	                             N default hosts, full mesh, Publish to
//	                             the receivers' Subscription.Next
//	floor=gossipsub+tables/members=N
//	                             the same with the signatures verified
//	                             as the node verifies them, through
//	                             tables of the keys (p2p.UseEd25519Verifier)
//	floor=gossipsub/members=N/senders=all
//	                             floor=gossipsub with every host publishing, up
//	                             to 16 messages in flight each, and the
//	                             queue sizes Parley's hosts use
//	                             (p2p.DefaultQueueSizes): with the
//	                             default 32 per peer, five hosts sending
//	                             16 each overflow them, and the run
//	                             measures drops and timeouts
//	floor=badger-sync-write      store.Write of one log entry and its
//	                             delivered mark, SyncWrites on (as the node
//	                             writes a received message)
//	floor=badger-sync-write/stores=K
//	                             the same write by K stores at once, each
//	                             store's time a sample: the receivers of
//	                             one message share this machine's disk
//	floor=mls-protect-unprotect  EncryptApplication of 1 KiB by one member
//	                             and its processing by another (suite 1)

// benchSizes are the group sizes benchmarked.
func benchSizes() []int {
	if os.Getenv("PARLEY_BENCH_LARGE") != "" {
		return []int{2, 5, 20}
	}
	return []int{2, 5}
}

const (
	benchTextSize = 1024
	// benchLost is how long a message may take before it counts as lost.
	benchLost = 5 * time.Second
	// benchWindow bounds the raw gossipsub floor's messages in flight in
	// the throughput benchmark (an unbounded burst overflows pubsub's
	// queues and measures drops, not throughput).
	benchWindow = 16
	// benchDeepWindow is a window deep enough that the node's rate is
	// bound by its work, not by the latency of a message (at 16 in flight
	// the rate is 16 over the latency under load).
	benchDeepWindow = 128
)

// BenchmarkDeliveryLatency sends one 1 KiB text at a time and reports the
// p50 and p99 of its delivery to each receiver, for the node and, in the
// same run, for raw gossipsub between as many hosts, a durable badger
// write and MLS protect+unprotect (see the comment at the top of this
// file). PARLEY_BENCH_LARGE=1 adds members=20.
func BenchmarkDeliveryLatency(b *testing.B) {
	cs := newBenchClusters(b)
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { cs.get(b, "node", n).latency(b) })
		b.Run(fmt.Sprintf("floor=gossipsub/members=%d", n), func(b *testing.B) { floorVerify(b, false); cs.get(b, "raw", n).latency(b) })
		b.Run(fmt.Sprintf("floor=gossipsub+tables/members=%d", n), func(b *testing.B) { floorVerify(b, true); cs.get(b, "raw", n).latency(b) })
	}
	b.Run("floor=badger-sync-write", benchSyncWrite)
	for _, n := range benchSizes() {
		if n > 2 {
			b.Run(fmt.Sprintf("floor=badger-sync-write/stores=%d", n-1), func(b *testing.B) { benchSyncWrites(b, n-1) })
		}
	}
	b.Run("floor=mls-protect-unprotect", benchProtectUnprotect)
}

// BenchmarkThroughput has member 0 send b.N 1 KiB texts as fast as
// Node.Send accepts them, one call at a time (members=N) or with up to 16
// messages in flight, as many calls at once (members=N/inflight=16), and
// reports the messages per second delivered (saved, and an event given) to
// every receiver, and the outputs of the group's loop each durable write
// carried at the receivers; then every member sends at once, each with up
// to 16 in flight (members=N/senders=all/inflight=16). Beside them, raw
// gossipsub between as many hosts with up to 16 messages in flight, from
// one and from every host. PARLEY_BENCH_LARGE=1 adds members=20.
func BenchmarkThroughput(b *testing.B) {
	cs := newBenchClusters(b)
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { cs.get(b, "node", n).throughput(b, 1, 1) })
		b.Run(fmt.Sprintf("members=%d/inflight=%d", n, benchWindow), func(b *testing.B) { cs.get(b, "node", n).throughput(b, benchWindow, 1) })
		b.Run(fmt.Sprintf("members=%d/inflight=%d", n, benchDeepWindow), func(b *testing.B) { cs.get(b, "node", n).throughput(b, benchDeepWindow, 1) })
		b.Run(fmt.Sprintf("members=%d/senders=all/inflight=%d", n, benchWindow), func(b *testing.B) { cs.get(b, "node", n).throughput(b, benchWindow, n) })
		b.Run(fmt.Sprintf("floor=gossipsub/members=%d", n), func(b *testing.B) {
			floorVerify(b, false)
			cs.get(b, "raw", n).throughput(b, benchWindow, 1)
		})
		b.Run(fmt.Sprintf("floor=gossipsub/members=%d/senders=all", n), func(b *testing.B) {
			floorVerify(b, false)
			cs.get(b, "raw-queues", n).throughput(b, benchWindow, n)
		})
		b.Run(fmt.Sprintf("floor=gossipsub+tables/members=%d", n), func(b *testing.B) {
			floorVerify(b, true)
			cs.get(b, "raw", n).throughput(b, benchWindow, 1)
		})
	}
}

// floorVerify makes a raw gossipsub floor verify its messages' Ed25519
// signatures with go-libp2p's own keys (tables false: the raw library, the
// floor issue 17 names) or through the tables the node verifies with
// (p2p.UseEd25519Verifier, set by every node of this process), until the
// sub-benchmark ends.
func floorVerify(b *testing.B, tables bool) {
	if tables {
		p2p.UseEd25519Verifier(suite.VerifyEd25519Repeated)
	} else {
		p2p.UseEd25519Verifier(nil)
	}
	b.Cleanup(func() { p2p.UseEd25519Verifier(suite.VerifyEd25519Repeated) })
}

// benchClusters keeps the clusters of one top-level benchmark: the
// testing package runs each sub-benchmark once with b.N = 1 and again with
// the real b.N, and a cluster of nodes takes seconds to form. They close
// when the top-level benchmark ends.
type benchClusters struct {
	top *testing.B
	mu  sync.Mutex
	m   map[string]*benchCluster
}

func newBenchClusters(top *testing.B) *benchClusters {
	return &benchClusters{top: top, m: map[string]*benchCluster{}}
}

func (cs *benchClusters) get(b *testing.B, kind string, n int) *benchCluster {
	b.Helper()
	key := fmt.Sprint(kind, n)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c := cs.m[key]; c != nil {
		return c
	}
	start := time.Now()
	var c *benchCluster
	switch kind {
	case "node":
		c = newNodeCluster(b, cs.top, n)
	case "raw":
		c = newRawCluster(b, cs.top, n, nil)
	case "raw-queues":
		c = newRawCluster(b, cs.top, n, &p2p.DefaultQueueSizes)
	}
	c.startReaders(cs.top)
	c.warmUp(b)
	b.Logf("%s cluster of %d ready in %v", kind, n, time.Since(start).Round(time.Millisecond))
	cs.m[key] = c
	return c
}

// benchCluster is the node's members or raw gossipsub hosts. Member 0 is
// the sender unless every member sends.
type benchCluster struct {
	// senders send a payload from each member.
	senders []func(ctx context.Context, text string) error
	// receivers each return the next payload a member got from another
	// (member 0's own are not among them).
	receivers []func(ctx context.Context) (string, error)
	// blocking is set when send returns only once the message is saved
	// (Node.Send): a window of messages in flight then needs as many
	// calls at once. writes, if set, returns the receivers' durable
	// writes of group state and the loop outputs they carried.
	blocking bool
	writes   func() (writes, outputs int64)
	// senderWrites is writes for the sender.
	senderWrites func() (writes, outputs int64)
	run          atomic.Pointer[benchRun]
	runID        atomic.Uint64
}

// benchRun is the state of one measurement: payloads carry its id, so that
// stragglers of an earlier run are ignored.
type benchRun struct {
	id        uint64
	want      int32
	sent      []atomic.Int64 // UnixNano at the sender's call
	counts    []atomic.Int32
	complete  []chan struct{}
	delivered atomic.Int64
	mu        sync.Mutex
	samples   []time.Duration
}

// openBenchNode makes a node in a directory of owner (which closes it), on
// loopback, configured as the daemon is (default tick interval, or
// PARLEY_BENCH_TICK, a duration, to see whether the tick is on the
// delivery path), without timed key updates.
func openBenchNode(b, owner *testing.B, name string) *Node {
	b.Helper()
	dir := owner.TempDir()
	if _, err := Init(dir, name, nil, nil); err != nil {
		b.Fatal(err)
	}
	var tick time.Duration
	if s := os.Getenv("PARLEY_BENCH_TICK"); s != "" {
		var err error
		if tick, err = time.ParseDuration(s); err != nil {
			b.Fatalf("PARLEY_BENCH_TICK: %v", err)
		}
	}
	n, err := Open(context.Background(), Config{Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, UpdateInterval: -1, TickInterval: tick, Logger: benchLogger(name)})
	if err != nil {
		b.Fatal(err)
	}
	owner.Cleanup(func() { n.Close() })
	return n
}

// benchLogger is a benchmark node's logger: none, or with PARLEY_BENCH_LOG
// set, debug lines on standard error naming the node.
func benchLogger(name string) *slog.Logger {
	if os.Getenv("PARLEY_BENCH_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

func newNodeCluster(b, owner *testing.B, size int) *benchCluster {
	b.Helper()
	ctx := context.Background()
	nodes := make([]*Node, size)
	for i := range nodes {
		nodes[i] = openBenchNode(b, owner, fmt.Sprintf("m%d", i))
	}
	for i := range nodes {
		for j := i + 1; j < size; j++ {
			befriend(b, nodes[i], nodes[j])
		}
	}
	g, err := nodes[0].CreateGroup(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i < size; i++ {
		if err := nodes[0].Invite(ctx, g.ID, fmt.Sprintf("m%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range nodes {
		eventually(b, 30*time.Second+time.Duration(size)*3*time.Second, n.id.Name+" in the group with all", func() bool {
			gs := groupOf(b, n, "bench")
			return !gs.Pending && gs.Members == size
		})
	}
	// Full mesh on the group's topic (the connect loop dials contacts
	// every 5 s).
	eventually(b, 30*time.Second, "every member a topic peer of every other", func() bool {
		for _, n := range nodes {
			r := n.runner(g.ID)
			if r == nil || r.topic == nil || len(r.topic.Peers()) < size-1 {
				return false
			}
		}
		return true
	})
	c := &benchCluster{blocking: true}
	for _, n := range nodes {
		c.senders = append(c.senders, func(ctx context.Context, text string) error {
			_, err := n.Send(ctx, g.ID, text)
			return err
		})
	}
	c.writes = func() (writes, outputs int64) {
		for _, n := range nodes[1:] {
			r := n.runner(g.ID)
			writes += r.writes.Load()
			outputs += r.outputs.Load()
		}
		return writes, outputs
	}
	c.senderWrites = func() (writes, outputs int64) {
		r := nodes[0].runner(g.ID)
		return r.writes.Load(), r.outputs.Load()
	}
	subCtx, cancel := context.WithCancel(ctx)
	owner.Cleanup(cancel)
	for _, n := range nodes {
		events, err := n.Subscribe(subCtx, g.ID)
		if err != nil {
			b.Fatal(err)
		}
		c.receivers = append(c.receivers, func(ctx context.Context) (string, error) {
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						return "", context.Canceled
					}
					if ev.Type == api.EventMessage && ev.Message != nil && !ev.Message.Own {
						return ev.Message.Text, nil
					}
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
		})
	}
	return c
}

// newRawCluster is go-libp2p-pubsub with default settings on default
// go-libp2p hosts on loopback TCP, every host connected to every other (as
// p2p's BenchmarkGossip/raw, but in a full mesh like the node cluster);
// queues, if set, are the pubsub queue sizes instead of the defaults.
func newRawCluster(b, owner *testing.B, size int, queues *p2p.QueueSizes) *benchCluster {
	b.Helper()
	const topic = "bench"
	c := &benchCluster{}
	var infos []peer.AddrInfo
	var hosts []interface {
		Connect(context.Context, peer.AddrInfo) error
	}
	var topics []*pubsub.Topic
	for range size {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		owner.Cleanup(func() { cancel(); h.Close() })
		var opts []pubsub.Option
		var subOpts []pubsub.SubOpt
		if queues != nil {
			opts = append(opts, pubsub.WithPeerOutboundQueueSize(queues.Outbound), pubsub.WithValidateQueueSize(queues.Validation))
			subOpts = append(subOpts, pubsub.WithBufferSize(queues.Subscription))
		}
		ps, err := pubsub.NewGossipSub(ctx, h, opts...)
		if err != nil {
			b.Fatal(err)
		}
		tp, err := ps.Join(topic)
		if err != nil {
			b.Fatal(err)
		}
		sub, err := tp.Subscribe(subOpts...)
		if err != nil {
			b.Fatal(err)
		}
		infos = append(infos, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
		hosts = append(hosts, h)
		topics = append(topics, tp)
		c.senders = append(c.senders, func(ctx context.Context, text string) error { return tp.Publish(ctx, []byte(text)) })
		self := h.ID()
		c.receivers = append(c.receivers, func(ctx context.Context) (string, error) {
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return "", err
				}
				if m.ReceivedFrom != self {
					return string(m.Data), nil
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range hosts {
		for j := i + 1; j < size; j++ {
			if err := hosts[i].Connect(ctx, infos[j]); err != nil {
				b.Fatal(err)
			}
		}
	}
	eventually(b, 30*time.Second, "every host a topic peer of every other", func() bool {
		for _, tp := range topics {
			if len(tp.ListPeers()) < size-1 {
				return false
			}
		}
		return true
	})
	return c
}

// startReaders reads every receiver until owner ends.
func (c *benchCluster) startReaders(owner *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, next := range c.receivers {
		wg.Go(func() {
			for {
				text, err := next(ctx)
				if err != nil {
					return
				}
				c.deliver(text)
			}
		})
	}
	owner.Cleanup(func() { cancel(); wg.Wait() })
}

// payload is the text of message seq of run r: "bench <run> <seq> "
// padded with x to 1 KiB.
func payload(r *benchRun, seq int) string {
	p := fmt.Sprintf("bench %d %d ", r.id, seq)
	return p + strings.Repeat("x", benchTextSize-len(p))
}

// parsePayload returns the run and sequence number of a payload.
func parsePayload(text string) (run uint64, seq int, ok bool) {
	f := strings.SplitN(text, " ", 4)
	if len(f) < 4 || f[0] != "bench" {
		return 0, 0, false
	}
	run, err1 := strconv.ParseUint(f[1], 10, 64)
	seq, err2 := strconv.Atoi(f[2])
	return run, seq, err1 == nil && err2 == nil
}

func (c *benchCluster) deliver(text string) {
	now := time.Now()
	r := c.run.Load()
	id, seq, ok := parsePayload(text)
	if r == nil || !ok || id != r.id || seq < 0 || seq >= len(r.counts) {
		return
	}
	sent := time.Unix(0, r.sent[seq].Load())
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
		want:     int32(len(c.senders) - 1),
		sent:     make([]atomic.Int64, n),
		counts:   make([]atomic.Int32, n),
		complete: make([]chan struct{}, n),
		samples:  make([]time.Duration, 0, n*(len(c.senders)-1)),
	}
	for i := range r.complete {
		r.complete[i] = make(chan struct{})
	}
	c.run.Store(r)
	return r
}

// sendSeq stamps and sends message seq of r from member 0.
func (c *benchCluster) sendSeq(r *benchRun, seq int) error { return c.sendSeqFrom(r, seq, 0) }

// sendSeqFrom stamps and sends message seq of r from member from.
func (c *benchCluster) sendSeqFrom(r *benchRun, seq, from int) error {
	text := payload(r, seq)
	r.sent[seq].Store(time.Now().UnixNano())
	return c.senders[from](context.Background(), text)
}

// warmUp sends until one message reaches every receiver.
func (c *benchCluster) warmUp(b *testing.B) {
	for attempt := range 30 {
		r := c.newRun(1)
		if err := c.sendSeq(r, 0); err != nil {
			b.Fatal(err)
		}
		select {
		case <-r.complete[0]:
			// A few more, so that the first measured message meets a
			// settled mesh and warm caches.
			for i := range 10 {
				r := c.newRun(1)
				if err := c.sendSeq(r, 0); err != nil {
					b.Fatal(err)
				}
				select {
				case <-r.complete[0]:
				case <-time.After(benchLost):
					b.Logf("warm-up message %d incomplete", i)
				}
			}
			return
		case <-time.After(time.Second):
			b.Logf("warm-up attempt %d incomplete", attempt)
		}
	}
	b.Fatal("the cluster never carried a message to every receiver")
}

// latency sends one message at a time, the next once every receiver has
// the last, and reports the p50 and p99 of every (message, receiver)
// delivery, and the p50 of the sender's call.
func (c *benchCluster) latency(b *testing.B) {
	r := c.newRun(b.N)
	lost := 0
	calls := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := c.sendSeq(r, i); err != nil {
			b.Fatal(err)
		}
		calls = append(calls, time.Since(start))
		select {
		case <-r.complete[i]:
		case <-time.After(benchLost):
			lost++
		}
	}
	b.StopTimer()
	r.mu.Lock()
	samples := slices.Clone(r.samples)
	r.mu.Unlock()
	reportPercentiles(b, samples, "")
	reportPercentiles(b, calls, "send-")
	b.ReportMetric(float64(lost), "lost")
}

// throughput sends b.N messages, with at most window in flight from each
// of the first senders members (1: each send waits for the call to return
// only, as Node.Send is synchronous; a blocking send is called from as
// many goroutines as the window), and reports the messages per second
// delivered to every other member. Message i is sent by member i mod
// senders; the members send at the same time, each from its own
// goroutine.
func (c *benchCluster) throughput(b *testing.B, window, senders int) {
	r := c.newRun(b.N)
	lost := 0
	var writes0, outputs0, swrites0, soutputs0 int64
	if c.writes != nil {
		writes0, outputs0 = c.writes()
		swrites0, soutputs0 = c.senderWrites()
	}
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	fail := func(err error) { failed.CompareAndSwap(nil, &err) }
	sendFrom := func(from int) {
		for i := from; i < b.N; i += senders {
			if window > 1 && i >= window*senders {
				select {
				case <-r.complete[i-window*senders]: // this member's, window messages back
				case <-time.After(benchLost):
				}
			}
			if window > 1 && c.blocking {
				wg.Go(func() {
					if err := c.sendSeqFrom(r, i, from); err != nil {
						fail(err)
					}
				})
				continue
			}
			if err := c.sendSeqFrom(r, i, from); err != nil {
				fail(err)
				return
			}
		}
	}
	cpu0, cpuKnown := processCPU()
	start := time.Now()
	b.ResetTimer()
	if senders == 1 {
		sendFrom(0)
	} else {
		for from := range senders {
			wg.Go(func() { sendFrom(from) })
		}
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	lost = r.drain(benchLost)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N-lost)/elapsed.Seconds(), "msgs/s")
	if cpu, ok := processCPU(); ok && cpuKnown {
		b.ReportMetric(float64((cpu-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
	}
	b.ReportMetric(float64(lost), "lost")
	// The latency under load: at a window of w, the rate is w over it.
	r.mu.Lock()
	reportPercentiles(b, slices.Clone(r.samples), "")
	r.mu.Unlock()
	if c.writes != nil {
		writes, outputs := c.writes()
		if writes > writes0 {
			b.ReportMetric(float64(outputs-outputs0)/float64(writes-writes0), "outputs/write")
		}
		writes, outputs = c.senderWrites()
		if writes > swrites0 {
			b.ReportMetric(float64(outputs-soutputs0)/float64(writes-swrites0), "sender-outputs/write")
		}
	}
}

// drain waits until every message reached every receiver, or until no
// delivery at all happened for idle, and returns how many messages did not
// reach every receiver.
func (r *benchRun) drain(idle time.Duration) int {
	last, lastChange := r.delivered.Load(), time.Now()
	for i, done := range r.complete {
		for {
			select {
			case <-done:
			case <-time.After(10 * time.Millisecond):
				if d := r.delivered.Load(); d != last {
					last, lastChange = d, time.Now()
				} else if time.Since(lastChange) > idle {
					missing := 0
					for _, done := range r.complete[i:] {
						select {
						case <-done:
						default:
							missing++
						}
					}
					return missing
				}
				continue
			}
			break
		}
	}
	return 0
}

// reportPercentiles reports the p50 and p99 of samples in milliseconds.
func reportPercentiles(b *testing.B, samples []time.Duration, prefix string) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, prefix+"p50-ms")
	if prefix == "" {
		b.ReportMetric(float64(samples[min(len(samples)-1, len(samples)*99/100)].Microseconds())/1000, prefix+"p99-ms")
	}
}

// benchSyncWrite is the floor of one durable write: a store opened as the
// node opens it (encrypted, SyncWrites) writing a received 1 KiB message
// to a log with its delivered mark, as in store's BenchmarkDurableWrite.
func benchSyncWrite(b *testing.B) { benchSyncWrites(b, 1) }

// benchSyncWrites is the floor of the receivers' durable writes of one
// message when k of them share this machine's disk, as the members of a
// benchmarked cluster do: k stores each write it at the same moment, and
// every store's time to its acknowledged write is a sample. On its own
// disk each receiver would pay benchSyncWrite.
func benchSyncWrites(b *testing.B, k int) {
	ctx := context.Background()
	stores := make([]*store.Store, k)
	for i := range stores {
		dir := b.TempDir()
		s, err := store.Open(filepath.Join(dir, "db"), store.WithKeyFile(filepath.Join(dir, "key")), store.WithGCInterval(0))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	g := []byte("bench-group")
	env := []byte(strings.Repeat("e", benchTextSize))
	samples := make([]time.Duration, 0, k*b.N)
	var mu sync.Mutex
	b.ResetTimer()
	for i := range b.N {
		var wg sync.WaitGroup
		start := time.Now()
		for _, s := range stores {
			wg.Go(func() {
				batch := s.NewBatch()
				id := fmt.Appendf(nil, "env-%d", i)
				batch.AppendLog(g, store.LogEntry{ID: id, Envelope: env, Result: []byte("ok")})
				batch.MarkDelivered(g, id, 1)
				if err := s.Write(ctx, batch); err != nil {
					b.Error(err)
				}
				d := time.Since(start)
				mu.Lock()
				samples = append(samples, d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	reportPercentiles(b, samples, "")
}

// benchProtectUnprotect is the MLS floor of one message: 1 KiB protected
// by one member of a two-member group (suite 1, as the node's groups) and
// processed by the other.
func benchProtectUnprotect(b *testing.B) {
	cfg := &group.Config{}
	bundle := func(name string) *group.KeyPackageBundle {
		signer, err := Suite.GenerateSignatureKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		kp, err := group.NewKeyPackage(Suite, signer, group.KeyPackageOptions{Credential: wire.NewBasicCredential([]byte(name))})
		if err != nil {
			b.Fatal(err)
		}
		return kp
	}
	bob := bundle("bob")
	alice, err := group.Create(cfg, []byte("bench group"), nil, bundle("alice"))
	if err != nil {
		b.Fatal(err)
	}
	sc, err := alice.Commit(group.CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *bob.KeyPackage}}, WelcomeWithTree: true})
	if err != nil {
		b.Fatal(err)
	}
	alice = sc.State
	bobState, err := group.JoinWelcome(cfg, sc.Welcome, bob, group.JoinOptions{})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, benchTextSize)
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		enc, err := alice.EncryptApplication(data, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bobState.ProcessBytes(enc); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, samples, "")
}
