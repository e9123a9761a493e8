package group_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// pskStore is a shared external PSK store.
type pskStore map[string][]byte

func (p pskStore) ExternalPSK(id []byte) ([]byte, bool)        { v, ok := p[string(id)]; return v, ok }
func (p pskStore) ResumptionPSK([]byte, uint64) ([]byte, bool) { return nil, false }

// sim is a group of members in one process, driven by seeded random
// operations; after every commit all members must agree.
type sim struct {
	t       *testing.T
	cs      suite.CipherSuite
	rng     *rand.Rand
	cfg     *group.Config
	psks    pskStore
	members map[group.LeafIndex]*group.State
	names   int
	ops     map[string]int
	// lastWelcomeTree records whether the current commit puts the tree in
	// its Welcome.
	lastWelcomeTree bool
	growing         bool
}

func newSim(t *testing.T, cs suite.CipherSuite, seed uint64) *sim {
	var s [32]byte
	copy(s[:], fmt.Sprintf("parley-%d", seed))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	psks := pskStore{}
	sm := &sim{t: t, cs: cs, rng: rng, psks: psks, members: map[group.LeafIndex]*group.State{}, ops: map[string]int{}}
	sm.cfg = &group.Config{PSKs: psks, Rand: rand.NewChaCha8(s)}
	return sm
}

func (sm *sim) fatalf(format string, args ...any) {
	sm.t.Helper()
	sm.t.Fatalf(format, args...)
}

func (sm *sim) newBundle() *group.KeyPackageBundle {
	sm.names++
	signer, err := sm.cs.GenerateSignatureKey(sm.cfg.Rand)
	if err != nil {
		sm.fatalf("%v", err)
	}
	b, err := group.NewKeyPackage(sm.cs, signer, group.KeyPackageOptions{
		Credential: wire.NewBasicCredential([]byte("member-" + strconv.Itoa(sm.names))),
		Rand:       sm.cfg.Rand,
	})
	if err != nil {
		sm.fatalf("%v", err)
	}
	return b
}

// randomMember returns a random current member.
func (sm *sim) randomMember() (group.LeafIndex, *group.State) {
	keys := make([]group.LeafIndex, 0, len(sm.members))
	for l := range sm.members {
		keys = append(keys, l)
	}
	// Map iteration order is random; sort for reproducibility.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	l := keys[sm.rng.IntN(len(keys))]
	return l, sm.members[l]
}

// deliver has every member but the sender process a handshake message.
func (sm *sim) deliverProposal(from group.LeafIndex, msg []byte) {
	sm.forEachMember(func(l group.LeafIndex, st *group.State) (*group.State, error) {
		if l == from {
			return st, nil
		}
		if _, err := st.ProcessBytes(msg); err != nil {
			return nil, fmt.Errorf("member %d processing proposal from %d: %w", l, from, err)
		}
		return st, nil
	})
}

// applyCommit has every member process a commit made by committer (or an
// external joiner when committer is nil), installs joiners, and checks
// that all members agree.
func (sm *sim) applyCommit(committer *group.LeafIndex, sc *group.StagedCommit, joiners []*group.KeyPackageBundle) {
	next := map[group.LeafIndex]*group.State{}
	results := sm.forEachMember(func(l group.LeafIndex, st *group.State) (*group.State, error) {
		if committer != nil && l == *committer {
			return sc.State, nil
		}
		res, err := st.ProcessBytes(sc.Message)
		if err != nil {
			return nil, fmt.Errorf("member %d processing commit: %w", l, err)
		}
		if res.Commit == nil {
			return nil, fmt.Errorf("member %d: not a commit", l)
		}
		return res.Commit.State, nil // nil when removed
	})
	for l, st := range results {
		if st != nil {
			next[l] = st
		}
	}
	if committer == nil {
		next[sc.State.OwnLeaf()] = sc.State
	}
	if len(joiners) > 0 {
		var tree wire.RatchetTree
		withTree := sm.lastWelcomeTree
		if !withTree {
			tree = sc.State.Tree().Wire()
		}
		for _, b := range joiners {
			st, err := group.JoinWelcome(sm.cfg, sc.Welcome, b, group.JoinOptions{Tree: tree})
			if err != nil {
				sm.fatalf("joining: %v", err)
			}
			b.DestroyInitKey()
			next[st.OwnLeaf()] = st
		}
	}
	sm.members = next
	sm.checkAgreement()
}

func (sm *sim) checkAgreement() {
	var ref *group.State
	for l, st := range sm.members {
		if st.OwnLeaf() != l {
			sm.fatalf("member at %d thinks it is at %d", l, st.OwnLeaf())
		}
		if ref == nil {
			ref = st
			continue
		}
		if st.Epoch() != ref.Epoch() || !bytes.Equal(st.EpochAuthenticator(), ref.EpochAuthenticator()) {
			sm.fatalf("members %d and %d disagree: epoch %d/%d", l, ref.OwnLeaf(), st.Epoch(), ref.Epoch())
		}
		if !bytes.Equal(st.Tree().TreeHash(), ref.Tree().TreeHash()) {
			sm.fatalf("members %d and %d have different trees", l, ref.OwnLeaf())
		}
	}
	if int(ref.Tree().Members()) != len(sm.members) {
		sm.fatalf("tree has %d members, simulation %d", ref.Tree().Members(), len(sm.members))
	}
}

// sendApplication has a random member send a message every other member
// must decrypt.
func (sm *sim) sendApplication() {
	from, st := sm.randomMember()
	text := []byte(fmt.Sprintf("hello from %d #%d", from, sm.rng.Uint32()))
	msg, err := st.EncryptApplication(text, []byte("ad"))
	if err != nil {
		sm.fatalf("member %d encrypting: %v", from, err)
	}
	sm.forEachMember(func(l group.LeafIndex, other *group.State) (*group.State, error) {
		if l == from {
			return other, nil
		}
		res, err := other.ProcessBytes(msg)
		if err != nil {
			return nil, fmt.Errorf("member %d decrypting from %d: %w", l, from, err)
		}
		if !bytes.Equal(res.ApplicationData, text) || res.Sender.Index != uint32(from) {
			return nil, fmt.Errorf("member %d got %q from %d", l, res.ApplicationData, res.Sender.Index)
		}
		return other, nil
	})
}

// forEachMember runs f for every member on all cores (each member's state
// is its own, as on separate devices) and fails on the first error.
func (sm *sim) forEachMember(f func(group.LeafIndex, *group.State) (*group.State, error)) map[group.LeafIndex]*group.State {
	type result struct {
		l   group.LeafIndex
		st  *group.State
		err error
	}
	work := make(chan group.LeafIndex)
	out := make(chan result)
	workers := runtime.GOMAXPROCS(0)
	for range workers {
		go func() {
			for l := range work {
				st, err := f(l, sm.members[l])
				out <- result{l, st, err}
			}
		}()
	}
	go func() {
		for l := range sm.members {
			work <- l
		}
		close(work)
	}()
	res := make(map[group.LeafIndex]*group.State, len(sm.members))
	var firstErr error
	for range sm.members {
		r := <-out
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		res[r.l] = r.st
	}
	if firstErr != nil {
		sm.fatalf("%v", firstErr)
	}
	return res
}

// step runs one random operation. The group grows in waves: while growing
// it adds more than it removes until it reaches maxMembers, then shrinks
// to a few members, and so on, so that every size up to the maximum is
// visited.
func (sm *sim) step(maxMembers int) {
	n := len(sm.members)
	if n >= maxMembers {
		sm.growing = false
	} else if n <= 3 {
		sm.growing = true
	}
	addP, removeP := 25, 40
	if !sm.growing {
		addP, removeP = 5, 45
	}
	encrypt := sm.rng.IntN(2) == 0
	sm.lastWelcomeTree = sm.rng.IntN(2) == 0
	r := sm.rng.IntN(100)
	switch {
	case r < addP && n < maxMembers: // add 1-3 members, some proposed by others
		sm.ops["add"]++
		committerLeaf, committer := sm.randomMember()
		k := min(1+sm.rng.IntN(3), maxMembers-n)
		var joiners []*group.KeyPackageBundle
		var byValue []wire.Proposal
		for range k {
			b := sm.newBundle()
			joiners = append(joiners, b)
			if sm.rng.IntN(2) == 0 && n > 1 {
				pl, proposer := sm.randomMember()
				msg, _, err := proposer.Propose(&wire.Add{KeyPackage: *b.KeyPackage}, encrypt, nil)
				if err != nil {
					sm.fatalf("proposing add: %v", err)
				}
				sm.deliverProposal(pl, msg)
			} else {
				byValue = append(byValue, &wire.Add{KeyPackage: *b.KeyPackage})
			}
		}
		sc, err := committer.Commit(group.CommitOptions{Proposals: byValue, IncludePending: true, Encrypt: encrypt,
			WelcomeWithTree: sm.lastWelcomeTree, ForcePath: sm.rng.IntN(2) == 0})
		if err != nil {
			sm.fatalf("committing adds: %v", err)
		}
		sm.applyCommit(&committerLeaf, sc, joiners)
	case r < removeP && n > 2: // remove a member
		sm.ops["remove"]++
		committerLeaf, committer := sm.randomMember()
		victim, _ := sm.randomMember()
		for victim == committerLeaf {
			victim, _ = sm.randomMember()
		}
		opts := group.CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: uint32(victim)}}, Encrypt: encrypt}
		// In odd epochs the victim leaves by SelfRemove (the epoch, not the
		// rng, decides, so that the plans' sequences of operations stay).
		if committer.Epoch()%2 == 1 {
			sm.ops["self-remove"]++
			msg, _, err := sm.members[victim].ProposeSelfRemove(nil)
			if err != nil {
				sm.fatalf("proposing self_remove: %v", err)
			}
			sm.deliverProposal(victim, msg)
			opts = group.CommitOptions{IncludePending: true, Encrypt: encrypt}
		}
		sc, err := committer.Commit(opts)
		if err != nil {
			sm.fatalf("committing remove: %v", err)
		}
		if len(sc.Removed) != 1 || sc.Removed[0] != victim {
			sm.fatalf("commit removed %v, want [%d]", sc.Removed, victim)
		}
		sm.applyCommit(&committerLeaf, sc, nil)
	case r < 55 && n > 1: // update proposal committed by another member
		sm.ops["update"]++
		ul, updater := sm.randomMember()
		msg, _, err := updater.Propose(&wire.Update{}, encrypt, nil)
		if err != nil {
			sm.fatalf("proposing update: %v", err)
		}
		sm.deliverProposal(ul, msg)
		cl, committer := sm.randomMember()
		for cl == ul {
			cl, committer = sm.randomMember()
		}
		sc, err := committer.Commit(group.CommitOptions{IncludePending: true, Encrypt: encrypt})
		if err != nil {
			sm.fatalf("committing update: %v", err)
		}
		sm.applyCommit(&cl, sc, nil)
	case r < 65: // empty commit (path only)
		sm.ops["empty-commit"]++
		cl, committer := sm.randomMember()
		sc, err := committer.Commit(group.CommitOptions{Encrypt: encrypt})
		if err != nil {
			sm.fatalf("empty commit: %v", err)
		}
		sm.applyCommit(&cl, sc, nil)
	case r < 72 && n < maxMembers: // external join
		sm.ops["external-join"]++
		_, st := sm.randomMember()
		gi, err := st.GroupInfo(group.GroupInfoOptions{WithTree: true, WithExternalPub: true})
		if err != nil {
			sm.fatalf("group info: %v", err)
		}
		b := sm.newBundle()
		sc, err := group.JoinExternal(sm.cfg, gi, b.Signer, group.ExternalJoinOptions{Credential: b.KeyPackage.LeafNode.Credential})
		if err != nil {
			sm.fatalf("external join: %v", err)
		}
		sm.applyCommit(nil, sc, nil)
	case r < 80: // external PSK
		sm.ops["psk"]++
		id := []byte(fmt.Sprintf("psk-%d", sm.rng.Uint64()))
		secret := make([]byte, 32)
		for i := range secret {
			secret[i] = byte(sm.rng.Uint32())
		}
		sm.psks[string(id)] = secret
		nonce := make([]byte, sm.cs.Nh())
		for i := range nonce {
			nonce[i] = byte(sm.rng.Uint32())
		}
		cl, committer := sm.randomMember()
		sc, err := committer.Commit(group.CommitOptions{Encrypt: encrypt, Proposals: []wire.Proposal{
			&wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKExternal, PSKID: id, Nonce: nonce}}}})
		if err != nil {
			sm.fatalf("psk commit: %v", err)
		}
		sm.applyCommit(&cl, sc, nil)
	default:
		sm.ops["application"]++
		sm.sendApplication()
	}
}

func TestRandomizedGroupOperations(t *testing.T) {
	type plan struct {
		cs         suite.CipherSuite
		ops        int
		maxMembers int
	}
	plans := []plan{{1, 1000, 50}, {2, 120, 12}, {3, 200, 20}, {4, 60, 8}, {5, 40, 6}, {6, 60, 8}, {7, 60, 8}, {0x53, 120, 12}, {0x54, 200, 20}}
	for i := range plans {
		switch {
		case testing.Short():
			plans[i].ops = max(40, plans[i].ops/5)
			plans[i].maxMembers = max(4, plans[i].maxMembers/4)
		case raceEnabled && plans[i].cs != 1:
			// The race detector slows crypto several times over; suite 1
			// keeps its 1,000 operations, the others run a third.
			plans[i].ops /= 3
		}
	}
	seed := uint64(20261126)
	if v := os.Getenv("PARLEY_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("PARLEY_SEED: %v", err)
		}
	}
	for _, p := range plans {
		t.Run(fmt.Sprintf("suite=%d", p.cs), func(t *testing.T) {
			t.Logf("seed %d (rerun with PARLEY_SEED=%d)", seed, seed)
			defer func() {
				if t.Failed() {
					t.Logf("FAILED with seed %d: rerun with PARLEY_SEED=%d go test -run 'TestRandomizedGroupOperations/suite=%d' ./mls/group/", seed, seed, p.cs)
				}
			}()
			sm := newSim(t, p.cs, seed+uint64(p.cs))
			first, err := group.Create(sm.cfg, []byte("randomized"), nil, sm.newBundle())
			if err != nil {
				t.Fatal(err)
			}
			sm.members[0] = first
			largest := 0
			for range p.ops {
				sm.step(p.maxMembers)
				largest = max(largest, len(sm.members))
			}
			if largest != p.maxMembers {
				t.Errorf("largest group %d members, want the maximum %d to be reached", largest, p.maxMembers)
			}
			t.Logf("%d operations %v, final epoch %d with %d members, largest %d", p.ops, sm.ops, sm.anyMember().Epoch(), len(sm.members), largest)
		})
	}
}

func (sm *sim) anyMember() *group.State {
	_, st := sm.randomMember()
	return st
}
