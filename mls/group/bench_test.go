package group

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// Benchmarks of the group engine at N = 10 ... 10,000 members:
//
//	go test -run XXX -bench . -benchmem -timeout 60m ./mls/group/
//
// The groups are built directly (not by N sequential commits that N
// members process, which would take hours at 10,000): N signed leaves,
// then, for a steady-state tree, every member in turn applies an
// UpdatePath, as after each member has committed once. Member 0 commits
// and member N-1 processes.

var benchSizes = []int{10, 100, 1000, 10000}

type benchGroup struct {
	a, b    *State
	signers []*suite.SignaturePrivateKey
}

var (
	benchMu     sync.Mutex
	benchGroups = map[string]*benchGroup{}
)

// makeBenchGroup returns states of the first and last member of an n-member
// group; steady selects a tree with every parent node set.
func makeBenchGroup(tb testing.TB, cs suite.CipherSuite, n int, steady bool) *benchGroup {
	tb.Helper()
	key := fmt.Sprintf("%d/%d/%v", cs, n, steady)
	benchMu.Lock()
	defer benchMu.Unlock()
	if g, ok := benchGroups[key]; ok {
		return g
	}
	groupID := []byte("benchmark group")
	tree := ratchettree.New(cs)
	signers := make([]*suite.SignaturePrivateKey, n)
	leafKeys := make([]*suite.HPKEPrivateKey, n)
	caps := DefaultCapabilities()
	for i := range n {
		var err error
		if signers[i], err = cs.GenerateSignatureKey(nil); err != nil {
			tb.Fatal(err)
		}
		if leafKeys[i], err = cs.GenerateHPKEKey(nil); err != nil {
			tb.Fatal(err)
		}
		leaf := &wire.LeafNode{
			EncryptionKey: leafKeys[i].PublicKey(),
			SignatureKey:  signers[i].PublicKey(),
			Credential:    wire.NewBasicCredential([]byte(fmt.Sprintf("member %d", i))),
			Capabilities:  caps,
			Source:        wire.LeafNodeSourceKeyPackage,
			Lifetime:      wire.Lifetime{NotBefore: 0, NotAfter: 1<<63 - 1},
		}
		if err := leaf.Sign(cs, signers[i], nil, 0); err != nil {
			tb.Fatal(err)
		}
		tree.AddLeaf(leaf)
	}
	nodeKeys := map[treemath.NodeIndex]*suite.HPKEPrivateKey{}
	if steady {
		for i := range n {
			l := treemath.LeafIndex(i)
			o, err := tree.ApplyOwnPath(l, *tree.Leaf(l), signers[i], groupID, nil)
			if err != nil {
				tb.Fatal(err)
			}
			leafKeys[i] = o.LeafKey
			for j, x := range o.Nodes {
				nodeKeys[x] = o.NodeKeys[j]
			}
		}
	}
	ctx := wire.GroupContext{Version: wire.MLS10, CipherSuite: cs, GroupID: groupID, Epoch: 7,
		TreeHash: tree.TreeHash(), ConfirmedTranscriptHash: make([]byte, cs.Nh())}
	epochSecret := make([]byte, cs.Nh())
	rand.Read(epochSecret)
	member := func(i int) *State {
		l := treemath.LeafIndex(i)
		priv := ratchettree.NewPrivateKeys(l, leafKeys[i])
		for _, x := range treemath.DirectPath(l.Node(), tree.Leaves()) {
			if k := nodeKeys[x]; k != nil && !tree.IsBlank(x) {
				priv.Set(x, k)
			}
		}
		secrets := keyschedule.FromEpochSecret(cs, epochSecret)
		tag := framing.ConfirmationTag(cs, secrets.ConfirmationKey, ctx.ConfirmedTranscriptHash)
		s, err := newEpochState(&Config{SkipLifetimeCheck: true}, ctx, tree.Clone(), l, priv, signers[i], secrets, tag, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	g := &benchGroup{a: member(0), b: member(n - 1), signers: signers}
	benchGroups[key] = g
	return g
}

// benchSuites: the default suite, a NIST one, and the post-quantum X-Wing
// suite (0x0054) beside them.
var benchSuites = []suite.CipherSuite{1, 2, suite.MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519}

func forEachSize(b *testing.B, f func(b *testing.B, cs suite.CipherSuite, n int)) {
	for _, cs := range benchSuites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("suite=%d/n=%d", cs, n), func(b *testing.B) { f(b, cs, n) })
		}
	}
}

// BenchmarkCommitPath creates an empty commit with an UpdatePath (member 0)
// and processes it (member N-1), on a steady-state tree.
func BenchmarkCommitPath(b *testing.B) {
	forEachSize(b, func(b *testing.B, cs suite.CipherSuite, n int) {
		g := makeBenchGroup(b, cs, n, true)
		benchCommit(b, g, CommitOptions{ForcePath: true})
	})
}

// BenchmarkFirstCommitAfterBulkAdd is the first commit with a path after
// all members were added at once: every parent is blank, so the path is
// encrypted to N/2+... leaves and its cost is linear (expected).
func BenchmarkFirstCommitAfterBulkAdd(b *testing.B) {
	forEachSize(b, func(b *testing.B, cs suite.CipherSuite, n int) {
		g := makeBenchGroup(b, cs, n, false)
		benchCommit(b, g, CommitOptions{ForcePath: true})
	})
}

// BenchmarkAddMember adds one member (a commit without path, as the RFC
// allows for adds) and processes it.
func BenchmarkAddMember(b *testing.B) {
	forEachSize(b, func(b *testing.B, cs suite.CipherSuite, n int) {
		g := makeBenchGroup(b, cs, n, true)
		kp := newBenchKeyPackage(b, cs)
		benchCommit(b, g, CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *kp.KeyPackage}}})
	})
}

// BenchmarkRemoveMember removes one member (with the required path) and
// processes it.
func BenchmarkRemoveMember(b *testing.B) {
	forEachSize(b, func(b *testing.B, cs suite.CipherSuite, n int) {
		g := makeBenchGroup(b, cs, n, true)
		benchCommit(b, g, CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: uint32(n / 2)}}})
	})
}

func newBenchKeyPackage(b *testing.B, cs suite.CipherSuite) *KeyPackageBundle {
	signer, err := cs.GenerateSignatureKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	kp, err := NewKeyPackage(cs, signer, KeyPackageOptions{Credential: wire.NewBasicCredential([]byte("newcomer"))})
	if err != nil {
		b.Fatal(err)
	}
	return kp
}

// cpuClock reports the CPU time per operation of a benchmark loop
// (cpu-ms/op, all cores): on a shared machine, wall time varies with the
// load while CPU time barely does. Call its stop after b.Loop, which resets
// metrics.
func cpuClock(b *testing.B) (stop func()) {
	start, ok := cpuTime()
	return func() {
		if end, ok2 := cpuTime(); ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N)/1e6, "cpu-ms/op")
		}
	}
}

func benchCommit(b *testing.B, g *benchGroup, opts CommitOptions) {
	b.Run("create", func(b *testing.B) {
		stop := cpuClock(b)
		for b.Loop() {
			sc, err := g.a.Commit(opts)
			if err != nil {
				b.Fatal(err)
			}
			sc.Discard()
		}
		stop()
	})
	sc, err := g.a.Commit(opts)
	if err != nil {
		b.Fatal(err)
	}
	var m wire.MLSMessage
	if err := codec.Unmarshal(sc.Message, &m); err != nil {
		b.Fatal(err)
	}
	b.Run("process", func(b *testing.B) {
		stop := cpuClock(b)
		for b.Loop() {
			res, err := g.b.Process(&m)
			if err != nil {
				b.Fatal(err)
			}
			res.Commit.Discard()
		}
		stop()
		b.ReportMetric(float64(len(sc.Message)), "commit-bytes") // after b.Loop, which resets metrics
	})
}

// BenchmarkJoinWelcome joins from a Welcome carrying the tree, beside the
// floor: verifying N Ed25519 (or ECDSA) signatures, one core.
func BenchmarkJoinWelcome(b *testing.B) {
	forEachSize(b, func(b *testing.B, cs suite.CipherSuite, n int) {
		g := makeBenchGroup(b, cs, n, true)
		kp := newBenchKeyPackage(b, cs)
		sc, err := g.a.Commit(CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *kp.KeyPackage}}, WelcomeWithTree: true})
		if err != nil {
			b.Fatal(err)
		}
		welcome := codec.MustMarshal(wire.NewMLSMessage(sc.Welcome))
		b.Run("join", func(b *testing.B) {
			stop := cpuClock(b)
			for b.Loop() {
				var m wire.MLSMessage
				if err := codec.Unmarshal(welcome, &m); err != nil {
					b.Fatal(err)
				}
				s, err := JoinWelcome(&Config{SkipLifetimeCheck: true}, m.Welcome, kp, JoinOptions{})
				if err != nil {
					b.Fatal(err)
				}
				s.Destroy()
			}
			stop()
			b.ReportMetric(float64(len(welcome)), "welcome-bytes")
		})
		tree := sc.State.Tree()
		leaves := tree.LeafIndices()
		tbs := make([][]byte, len(leaves))
		for i, l := range leaves {
			if tbs[i], err = tree.Leaf(l).TBS(g.a.GroupID(), uint32(l)); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("verify-floor", func(b *testing.B) {
			for b.Loop() {
				for i, l := range leaves {
					leaf := tree.Leaf(l)
					if err := cs.VerifyWithLabel(leaf.SignatureKey, wire.LeafNodeTBSLabel, tbs[i], leaf.Signature); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	})
}

// BenchmarkApplicationMessage protects and unprotects 1 KiB.
func BenchmarkApplicationMessage(b *testing.B) {
	forEachSize(b, func(b *testing.B, cs suite.CipherSuite, n int) {
		g := makeBenchGroup(b, cs, n, true)
		data := make([]byte, 1024)
		b.Run("protect", func(b *testing.B) {
			s := restoreCopy(b, g.a)
			for b.Loop() {
				if _, err := s.EncryptApplication(data, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("unprotect", func(b *testing.B) {
			// Fresh copies on every run (-count): the sender's ratchet
			// must not run ahead of the receiver's by more than the
			// forward limit, and a batch left over would.
			sender, receiver := restoreCopy(b, g.a), restoreCopy(b, g.b)
			msgs := make([]*wire.MLSMessage, 0, 512)
			next := 0
			for b.Loop() {
				if next == len(msgs) {
					b.StopTimer()
					msgs, next = msgs[:0], 0
					for range cap(msgs) {
						enc, err := sender.EncryptApplication(data, nil)
						if err != nil {
							b.Fatal(err)
						}
						var m wire.MLSMessage
						if err := codec.Unmarshal(enc, &m); err != nil {
							b.Fatal(err)
						}
						msgs = append(msgs, &m)
					}
					b.StartTimer()
				}
				if _, err := receiver.Process(msgs[next]); err != nil {
					b.Fatal(err)
				}
				next++
			}
		})
	})
}

func restoreCopy(tb testing.TB, s *State) *State {
	tb.Helper()
	data, err := s.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := Restore(s.cfg, data)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkStateHeap reports the heap held by one member's state
// (heap-bytes/state), and by 8 retained epochs of it (heap-bytes/8-epochs:
// the state and the 7 epochs that 7 commits with paths lead to).
func BenchmarkStateHeap(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("suite=1/n=%d", n), func(b *testing.B) {
			cs := suite.CipherSuite(1)
			benchMu.Lock()
			delete(benchGroups, fmt.Sprintf("%d/%d/%v", cs, n, true))
			benchMu.Unlock()
			for b.Loop() {
				before := heapInUse()
				g := makeBenchGroup(b, cs, n, true)
				s := g.b
				g = nil
				benchMu.Lock()
				delete(benchGroups, fmt.Sprintf("%d/%d/%v", cs, n, true))
				benchMu.Unlock()
				afterOne := heapInUse()
				b.ReportMetric(float64(afterOne-before), "heap-bytes/state")
				retained := []*State{s}
				for range 7 {
					sc, err := retained[len(retained)-1].Commit(CommitOptions{ForcePath: true})
					if err != nil {
						b.Fatal(err)
					}
					retained = append(retained, sc.State)
				}
				afterEight := heapInUse()
				b.ReportMetric(float64(afterEight-before), "heap-bytes/8-epochs")
				runtime.KeepAlive(retained)
			}
		})
	}
}
