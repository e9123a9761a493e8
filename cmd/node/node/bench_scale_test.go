package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/p2p"
)

// Benchmarks of the whole node at scale (issue 17): what a commit costs in
// a large group, and what a node holds in memory per group. Real nodes as
// in bench_test.go (badger stores in temp directories, libp2p hosts on
// loopback TCP, the daemon's tick), beside floors measured in the same
// run:
//
//	go test -run XXX -bench 'CommitAtSize|GroupsMemory' -benchtime 1x ./cmd/node/node/
//
// Sizes are 100 and 1,000 members, 1, 10 and 100 groups (each takes
// seconds to set up); PARLEY_BENCH_LARGE=1 adds 10,000 members (about
// half a minute to set up) and 1,000 groups.
//
// BenchmarkCommitAtSize cannot run 1,000 nodes on a small machine. The
// group is made by a virtual creator (mls/group directly, no host, no
// store): one commit adds N-3 virtual members and the inviter, a real
// node, which joins from the Welcome as from any member's. The inviter
// then invites a second real node (Node.Invite: its KeyPackage fetched
// over a direct stream, the commit, the Welcome pushed) and sends a text
// as soon as its commit is saved (a text sent before is in an epoch the
// joiner never reads). Each op has a new inviter, group and joiner. Two
// departures from a real group, both forced by members that exist only as
// leaves:
//
//   - the inviter commits after CommitDelay whatever its committer rank
//     (ordering.Config.CommitBackoff = 1ns), as the preferred committer
//     would commit its proposal; a virtual member holds that rank most of
//     the time and never commits;
//   - a Welcome leaves only once the commit's epoch is final: a strict
//     majority of the previous epoch's members must vote for it. Virtual
//     members send no heads, so once the commit is saved the benchmark
//     hands the inviter signed heads of just enough of them (N/2 - 1
//     besides the inviter's own), through the topic validator as gossip
//     brings them, eight at a time; their signing is in the measured
//     time (a few ms), the gossip hop that would bring them is not.
//
// The inviter's own vote is its next head: the committer of a new epoch
// votes for it at most HeadInterval/8 (about 60 ms) after its previous
// head, other members at most every HeadInterval (500 ms). The text
// waits for the commit (CommitDelay, 200 ms, gathering proposals), then
// for the votes and the Welcome.
//
// Sub-benchmarks and what they report:
//
//	members=N            Node.Invite at the inviter to the joiner's
//	                     EventMessage of the text (ns/op, msg-ms);
//	                     commit-ms: to the inviter's membership event
//	                     (the commit made and saved); votes-ms: handing
//	                     the votes to the inviter; join-ms: to the
//	                     joiner's group event (joined)
//	floor=mls/members=N  mls/group alone on a group built the same way:
//	                     the commit adding one member (by value,
//	                     encrypted, Welcome with the tree) and the joiner's
//	                     JoinWelcome (commit-ms, join-ms), with the sizes
//	                     of the commit and the Welcome (commit-bytes,
//	                     welcome-bytes)
//
// BenchmarkGroupsMemory: one node (a) in 1, 10 and 100 groups, each
// with a second node (b), the same in every group. Both nodes are in this
// process, so the figures are the process's: heap-MiB is the live heap
// after a collection (debug.FreeOSMemory), rss-MiB the resident memory, goroutines all of them;
// node-heap-MiB and node-goroutines are half of the growth over the
// figures taken just before the two nodes were opened (a and b hold
// about the same: the same groups, one as creator, one as joiner).
// groups=K/idle is after the groups are made; groups=K/sent after a sent
// one text in each group and b has them all. The live heap can exceed the
// resident memory: each store allocates its badger memtable (32 MiB) when
// it opens, and pages never written are not resident. ns/op there is
// the collection and the reading, nothing of the node.

// scaleSizes are the group sizes of BenchmarkCommitAtSize.
func scaleSizes() []int {
	if os.Getenv("PARLEY_BENCH_LARGE") != "" {
		return []int{100, 1000, 10000}
	}
	return []int{100, 1000}
}

// groupCounts are the numbers of groups of BenchmarkGroupsMemory.
func groupCounts() []int {
	if os.Getenv("PARLEY_BENCH_LARGE") != "" {
		return []int{1, 10, 100, 1000}
	}
	return []int{1, 10, 100}
}

// scaleWait bounds each wait of these benchmarks.
const scaleWait = 2 * time.Minute

// BenchmarkCommitAtSize measures an invitation into a group of N-1
// members, mostly virtual, up to the new member's first message, beside
// the same commit and Welcome in mls/group alone (see the comment at the
// top of this file). PARLEY_BENCH_LARGE=1 adds members=10000.
func BenchmarkCommitAtSize(b *testing.B) {
	for _, n := range scaleSizes() {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { benchCommitAtSize(b, n) })
		b.Run(fmt.Sprintf("floor=mls/members=%d", n), func(b *testing.B) { benchCommitFloor(b, n) })
	}
}

// virtualMember is a member that exists only as its leaf: an identity as a
// node's (so that its credential passes ValidateCredential) and a
// KeyPackage.
type virtualMember struct {
	id     *Identity
	bundle *group.KeyPackageBundle
}

func newVirtualMembers(b *testing.B, n int) []virtualMember {
	b.Helper()
	out := make([]virtualMember, n)
	for i := range out {
		id, err := NewIdentity(fmt.Sprintf("v%d", i))
		if err != nil {
			b.Fatal(err)
		}
		kp, err := group.NewKeyPackage(Suite, id.Signer, group.KeyPackageOptions{
			Credential: id.Credential(), Capabilities: capabilities(), Now: time.Now(),
		})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = virtualMember{id: id, bundle: kp}
	}
	return out
}

// scaleMLSConfig is the MLS policy of Parley groups (Node.mlsConfig).
func scaleMLSConfig() *group.Config {
	return &group.Config{ValidateCredential: ValidateCredential, Grease: true}
}

// bulkGroup makes a group of the creator, the members and, if extra is
// set, that KeyPackage's owner last: the creator's one commit adds them
// all. It returns the commit.
func bulkGroup(b *testing.B, creator virtualMember, members []virtualMember, extra *wire.KeyPackage, gid []byte, ext wire.Extensions) *group.StagedCommit {
	b.Helper()
	st, err := group.Create(scaleMLSConfig(), gid, ext, creator.bundle)
	if err != nil {
		b.Fatal(err)
	}
	props := make([]wire.Proposal, 0, len(members)+1)
	for _, m := range members {
		props = append(props, &wire.Add{KeyPackage: *m.bundle.KeyPackage})
	}
	if extra != nil {
		props = append(props, &wire.Add{KeyPackage: *extra})
	}
	sc, err := st.Commit(group.CommitOptions{Proposals: props, WelcomeWithTree: extra != nil})
	if err != nil {
		b.Fatal(err)
	}
	return sc
}

// virtualGroup is a group node n joined from a virtual creator's Welcome.
type virtualGroup struct {
	hexID    string
	virtuals []virtualMember // the creator first
	leaves   []uint32        // the virtual members' leaves
}

// joinVirtualGroup makes a group of size members: a virtual creator, size-2
// virtual members and n, added by the creator's one commit; n joins from
// the Welcome (as one pushed by a member).
func joinVirtualGroup(b *testing.B, n *Node, name string, size int) *virtualGroup {
	b.Helper()
	ctx := context.Background()
	virtuals := newVirtualMembers(b, size-1)
	gid, secret := make([]byte, 32), make([]byte, 32)
	rand.Read(gid)
	rand.Read(secret)
	ext := wire.Extensions{{Type: extTopicSecret, Data: secret}, {Type: extGroupName, Data: []byte(name)}}
	batch := n.st.NewBatch()
	kp, err := n.newKeyPackage(batch, Suite, false)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.st.Write(ctx, batch); err != nil {
		b.Fatal(err)
	}
	sc := bulkGroup(b, virtuals[0], virtuals[1:], kp.KeyPackage, gid, ext)
	if err := n.joinWelcome(ctx, codec.MustMarshal(wire.NewMLSMessage(sc.Welcome))); err != nil {
		b.Fatal(err)
	}
	vg := &virtualGroup{hexID: hexRef(gid), virtuals: virtuals}
	for _, v := range virtuals {
		leaf, ok := sc.State.Tree().FindSignatureKey(v.id.Signer.PublicKey())
		if !ok {
			b.Fatal("a virtual member is not in the tree")
		}
		vg.leaves = append(vg.leaves, uint32(leaf))
	}
	sc.State.Destroy()
	return vg
}

// openScaleNode is openBenchNode with ordering settings of its own.
func openScaleNode(b, owner *testing.B, name string, oc ordering.Config) *Node {
	b.Helper()
	dir := owner.TempDir()
	if _, err := Init(dir, name, nil, nil); err != nil {
		b.Fatal(err)
	}
	n, err := Open(context.Background(), Config{Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, UpdateInterval: -1, Ordering: oc, Logger: benchLogger(name)})
	if err != nil {
		b.Fatal(err)
	}
	owner.Cleanup(func() { n.Close() })
	return n
}

// nextEvent returns the first event on events that match accepts, or fails
// after scaleWait.
func nextEvent(b testing.TB, events <-chan api.Event, what string, match func(api.Event) bool) api.Event {
	b.Helper()
	deadline := time.After(scaleWait)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				b.Fatalf("event stream closed waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			b.Fatalf("no %s after %v", what, scaleWait)
		}
	}
}

// benchCommitAtSize makes, for each op, a new inviter in a new group of
// size-1 members and a new joiner, so that every op is the same
// invitation (the nodes stay open until the benchmark ends).
func benchCommitAtSize(b *testing.B, size int) {
	b.StopTimer()
	ctx := context.Background()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var commitT, votesT, joinT, msgT time.Duration
	for i := range b.N {
		start := time.Now()
		inviter := openScaleNode(b, b, fmt.Sprintf("inviter%d", i), ordering.Config{CommitBackoff: time.Nanosecond})
		vg := joinVirtualGroup(b, inviter, "big", size-1)
		g := inviter.runner(vg.hexID)
		events, err := inviter.Subscribe(subCtx, vg.hexID)
		if err != nil {
			b.Fatal(err)
		}
		joiner := openBenchNode(b, b, fmt.Sprintf("joiner%d", i))
		befriend(b, inviter, joiner)
		joinerEvents, err := joiner.Subscribe(subCtx, "")
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("group of %d (%d virtual) and joiner ready in %v", size-1, len(vg.virtuals), time.Since(start).Round(time.Millisecond))
		name := joiner.id.Name
		text := fmt.Sprintf("welcome, %s", name)
		b.StartTimer()
		t0 := time.Now()
		if err := inviter.Invite(ctx, vg.hexID, name); err != nil {
			b.Fatal(err)
		}
		nextEvent(b, events, "membership event for "+name, func(ev api.Event) bool {
			return ev.Type == api.EventMembership && ev.Membership != nil && slices.Contains(ev.Membership.Added, name)
		})
		commitT += time.Since(t0)
		votes := make(chan time.Duration, 1)
		go func() { votes <- voteFor(b, g, vg) }()
		if _, err := inviter.Send(ctx, vg.hexID, text); err != nil {
			b.Fatal(err)
		}
		nextEvent(b, joinerEvents, name+" joined", func(ev api.Event) bool {
			return ev.Type == api.EventGroup && ev.Group == vg.hexID && ev.GroupInfo != nil && !ev.GroupInfo.Pending
		})
		joinT += time.Since(t0)
		nextEvent(b, joinerEvents, name+"'s first message", func(ev api.Event) bool {
			return ev.Type == api.EventMessage && ev.Group == vg.hexID && ev.Message != nil && ev.Message.Text == text
		})
		msgT += time.Since(t0)
		b.StopTimer()
		votesT += <-votes
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(commitT), "commit-ms")
	b.ReportMetric(ms(votesT), "votes-ms")
	b.ReportMetric(ms(joinT), "join-ms")
	b.ReportMetric(ms(msgT), "msg-ms")
}

// voteFor hands the inviter, through its topic validator, the heads of
// enough virtual members for its tip (the epoch its commit made) to be
// final, and returns how long that took. The heads are signed here by
// the virtual members' keys.
func voteFor(b *testing.B, g *groupRunner, vg *virtualGroup) time.Duration {
	start := time.Now()
	var tip *ordering.Node
	var voters int
	if err := g.do(context.Background(), func() error {
		tip = g.loop.Tip()
		if p := g.loop.Graph().Get(tip.Parent); p != nil {
			voters = len(p.Members)
		}
		return nil
	}); err != nil {
		b.Error(err)
		return 0
	}
	// A strict majority of the previous epoch's members: the inviter's
	// own vote and voters/2 virtual ones.
	need := voters / 2
	if need > len(vg.virtuals) {
		b.Errorf("%d votes needed, %d virtual members", need, len(vg.virtuals))
		return 0
	}
	seq := uint64(time.Now().UnixMilli())
	var refused atomic.Int64
	inParallel(need, func(i int) error {
		v := vg.virtuals[i]
		if g.validate(context.Background(), v.id.PeerID, virtualHead(v, vg.leaves[i], g.gid, tip, seq)) != p2p.Accept {
			refused.Add(1)
		}
		return nil
	})
	if k := refused.Load(); k > 0 {
		b.Errorf("%d of %d virtual heads not accepted", k, need)
	}
	return time.Since(start)
}

// virtualHead is a head of a virtual member voting for tip: an envelope as
// ordering's publishHeadFor makes it, signed with the member's key.
func virtualHead(v virtualMember, leaf uint32, gid []byte, tip *ordering.Node, seq uint64) []byte {
	h := &ordering.Head{GroupID: gid, Epoch: tip.Number, Tip: tip.ID, Leaf: leaf, Seq: seq, SignatureKey: v.id.Signer.PublicKey()}
	// The signed content is the encoding without the signature: an empty
	// opaque<V> is its one length byte.
	enc := codec.MustMarshal(h)
	sig, err := Suite.SignWithLabel(v.id.Signer, "Parley Head", enc[:len(enc)-1], nil)
	if err != nil {
		panic(err)
	}
	h.Signature = sig
	return (&ordering.Envelope{Kind: ordering.KindHead, Epoch: tip.ID, Payload: codec.MustMarshal(h)}).Encode()
}

// benchCommitFloor is the MLS floor of BenchmarkCommitAtSize: a group of
// size-1 members made as the node's is (one commit of the creator adds
// the others), the creator's commit adding one more member and that
// member's JoinWelcome, with the encodings the node makes.
func benchCommitFloor(b *testing.B, size int) {
	b.StopTimer()
	virtuals := newVirtualMembers(b, size)
	gid := make([]byte, 32)
	rand.Read(gid)
	ext := wire.Extensions{{Type: extTopicSecret, Data: make([]byte, 32)}, {Type: extGroupName, Data: []byte("big")}}
	sc := bulkGroup(b, virtuals[0], virtuals[1:size-1], nil, gid, ext)
	st := sc.State
	joiner := virtuals[size-1]
	cfg := scaleMLSConfig()
	var commitT, joinT time.Duration
	var commitBytes, welcomeBytes int
	for range b.N {
		b.StartTimer()
		t0 := time.Now()
		sc, err := st.Commit(group.CommitOptions{
			Proposals: []wire.Proposal{&wire.Add{KeyPackage: *joiner.bundle.KeyPackage}}, Encrypt: true, WelcomeWithTree: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		welcome := codec.MustMarshal(wire.NewMLSMessage(sc.Welcome))
		t1 := time.Now()
		var m wire.MLSMessage
		if err := codec.Unmarshal(welcome, &m); err != nil {
			b.Fatal(err)
		}
		joined, err := group.JoinWelcome(cfg, m.Welcome, joiner.bundle, group.JoinOptions{})
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		b.StopTimer()
		commitT += t1.Sub(t0)
		joinT += t2.Sub(t1)
		commitBytes, welcomeBytes = len(sc.Message), len(welcome)
		joined.Destroy()
		sc.Discard()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(commitT), "commit-ms")
	b.ReportMetric(ms(joinT), "join-ms")
	b.ReportMetric(float64(commitBytes), "commit-bytes")
	b.ReportMetric(float64(welcomeBytes), "welcome-bytes")
}

// BenchmarkGroupsMemory reports the memory and goroutines of a node in 1,
// 10 and 100 groups (PARLEY_BENCH_LARGE=1 adds 1,000), idle and after one
// text in each (see the comment at the top of this file).
func BenchmarkGroupsMemory(b *testing.B) {
	for _, k := range groupCounts() {
		b.Run(fmt.Sprintf("groups=%d", k), func(b *testing.B) { benchGroupsMemory(b, k) })
	}
}

// memFigures are the process's live heap after a collection, its
// goroutines and its resident memory (once the freed heap went back to
// the OS, so that what earlier benchmarks of the run freed is not
// counted).
type memFigures struct {
	heap       uint64
	goroutines int
	rss        int64
}

func readMemFigures() memFigures {
	debug.FreeOSMemory() // a collection, and the freed pages back to the OS
	goroutines, heap := runtimeFigures()
	return memFigures{heap: heap, goroutines: goroutines, rss: residentBytes()}
}

func benchGroupsMemory(b *testing.B, k int) {
	ctx := context.Background()
	base := readMemFigures()
	start := time.Now()
	na, nb := openBenchNode(b, b, "a"), openBenchNode(b, b, "b")
	befriend(b, na, nb)
	befriend(b, nb, na)
	ids := make([]string, k)
	if err := inParallel(k, func(i int) error {
		g, err := na.CreateGroup(ctx, fmt.Sprintf("g%03d", i))
		if err != nil {
			return err
		}
		ids[i] = g.ID
		return na.Invite(ctx, g.ID, "b")
	}); err != nil {
		b.Fatal(err)
	}
	eventually(b, scaleWait+time.Duration(k)*time.Second, "b in every group, and a topic peer of a in each", func() bool {
		joined := 0
		for _, g := range groupsOf(b, nb) {
			if !g.Pending && g.Members == 2 {
				joined++
			}
		}
		if joined < k {
			return false
		}
		for _, id := range ids {
			r := na.runner(id)
			if r == nil || r.topic == nil || len(r.topic.Peers()) < 1 {
				return false
			}
		}
		return true
	})
	b.Logf("%d groups of a and b ready in %v", k, time.Since(start).Round(time.Millisecond))
	report := func(b *testing.B) {
		var f memFigures
		for range b.N {
			f = readMemFigures()
		}
		b.ReportMetric(float64(f.heap)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(f.rss)/(1<<20), "rss-MiB")
		b.ReportMetric(float64(f.goroutines), "goroutines")
		b.ReportMetric((float64(f.heap)-float64(base.heap))/2/(1<<20), "node-heap-MiB")
		b.ReportMetric(float64(f.goroutines-base.goroutines)/2, "node-goroutines")
	}
	b.Run("idle", report)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := nb.Subscribe(subCtx, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		if _, err := na.Send(ctx, id, "hello "+id[:8]); err != nil {
			b.Fatal(err)
		}
	}
	got := map[string]bool{}
	for len(got) < k {
		ev := nextEvent(b, events, fmt.Sprintf("text %d of %d at b", len(got)+1, k), func(ev api.Event) bool {
			return ev.Type == api.EventMessage && ev.Message != nil && !ev.Message.Own
		})
		got[ev.Group] = true
	}
	b.Run("sent", report)
}

// inParallel runs fn for 0 to n-1 on eight goroutines and returns the
// first error; a goroutine stops at its first error.
func inParallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}
