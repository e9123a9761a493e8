package ordering

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

func randomIDs(r *rand.Rand, n int) [][8]byte {
	out := make([][8]byte, n)
	for i := range out {
		binary.BigEndian.PutUint64(out[i][:], r.Uint64())
	}
	return out
}

func sortedShortIDs(ids [][8]byte) [][8]byte {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b [8]byte) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// TestSketchPeelsTheDifference: two members hold a shared log and a few
// envelopes each that the other lacks; a sketch sized for the difference
// tells each side's exactly, for differences of 0 to 300 over logs of
// thousands, and it peels in nearly every trial (sketchCells' margin).
func TestSketchPeelsTheDifference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	failed, trials := 0, 0
	for _, d := range []int{0, 1, 2, 3, 5, 10, 30, 100, 300} {
		for trial := range 100 {
			trials++
			shared := randomIDs(r, 2000+trial)
			onlyA := randomIDs(r, d-d/3)
			onlyB := randomIDs(r, d/3)
			var key [2]uint64
			key[0], key[1] = r.Uint64(), r.Uint64()
			a, b := newLogSketch(sketchCells(d)), newLogSketch(sketchCells(d))
			for _, id := range append(slices.Clone(shared), onlyA...) {
				a.add(key, id, 1)
			}
			for _, id := range append(slices.Clone(shared), onlyB...) {
				b.add(key, id, 1)
			}
			a.subtract(b)
			plus, minus, ok := a.peel(key)
			if !ok {
				failed++
				t.Logf("d=%d did not peel", d)
				continue
			}
			if !slices.Equal(sortedShortIDs(plus), sortedShortIDs(onlyA)) || !slices.Equal(sortedShortIDs(minus), sortedShortIDs(onlyB)) {
				t.Fatalf("d=%d: peeled %d and %d ids, want %d and %d", d, len(plus), len(minus), len(onlyA), len(onlyB))
			}
		}
	}
	if failed*50 > trials {
		t.Errorf("%d of %d sketches did not peel (want at most 2%%)", failed, trials)
	}
	t.Logf("%d of %d sketches did not peel", failed, trials)
}

// TestSketchTooSmallSaysSo: a difference several times what the sketch
// was sized for does not peel, and peel says so rather than returning a
// part as if it were all.
func TestSketchTooSmallSaysSo(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		key := [2]uint64{r.Uint64(), r.Uint64()}
		s := newLogSketch(sketchCells(4))
		extra := randomIDs(r, 200+trial)
		for _, id := range extra {
			s.add(key, id, 1)
		}
		plus, _, ok := s.peel(key)
		if ok {
			t.Fatalf("trial %d: a sketch of %d cells peeled %d ids of %d", trial, sketchCells(4), len(plus), len(extra))
		}
	}
}

// TestSketchKeyedByNonce: ids that share every cell under one request's
// key (as a member grinding its messages' hashes could make them) do not
// under another's.
func TestSketchKeyedByNonce(t *testing.T) {
	s := newLogSketch(sketchCells(10))
	k1, k2 := [2]uint64{1, 2}, [2]uint64{3, 4}
	var a, b [8]byte
	binary.BigEndian.PutUint64(a[:], 42)
	found := false
	for v := uint64(43); v < 1<<22 && !found; v++ {
		binary.BigEndian.PutUint64(b[:], v)
		p, q := s.places(k1, 42), s.places(k1, v)
		slices.Sort(p[:])
		slices.Sort(q[:])
		found = p == q
	}
	if !found {
		t.Skip("no colliding pair found in the range searched")
	}
	p, q := s.places(k2, 42), s.places(k2, binary.BigEndian.Uint64(b[:]))
	slices.Sort(p[:])
	slices.Sort(q[:])
	if p != q {
		return
	}
	t.Error("two ids that collide in every cell under one key collide under another too")
}

// TestSyncRequestCarriesSketches: a request with a sketched log and a
// listed one decodes to the same, and malformed sketches are refused.
func TestSyncRequestCarriesSketches(t *testing.T) {
	key := [2]uint64{5, 6}
	s := newLogSketch(sketchCells(3))
	for _, id := range randomIDs(rand.New(rand.NewPCG(5, 6)), 100) {
		s.add(key, id, 1)
	}
	req := &syncRequest{groupID: []byte("g"), requester: "a", responder: "b", newest: 4, signatureKey: []byte("k"), signature: []byte("s"),
		heldLogs: []heldLog{{epoch: EpochID{1}, sketch: s}, {epoch: EpochID{2}, ids: [][8]byte{{9}, {8}}}}}
	data := req.encode()
	got, err := decodeSyncRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.heldLogs) != 2 || got.heldLogs[0].sketch == nil || !slices.Equal(got.heldLogs[0].sketch.cells, s.cells) ||
		got.heldLogs[1].sketch != nil || len(got.heldLogs[1].ids) != 2 {
		t.Fatalf("held logs decoded as %+v", got.heldLogs)
	}
	if !bytes.Equal(got.encode(), data) {
		t.Error("the request does not re-encode to the same bytes")
	}
	// A sketch of fewer cells than sketchHashes, and one beyond
	// maxSketchCells, are malformed.
	for _, cells := range []int{2, maxSketchCells + 1} {
		bad := &syncRequest{groupID: []byte("g"), heldLogs: []heldLog{{epoch: EpochID{1}, sketch: newLogSketch(cells)}}}
		if _, err := decodeSyncRequest(bad.encode()); err == nil {
			t.Errorf("a sketch of %d cells decoded", cells)
		}
	}
	if _, err := parseLogSketch(cryptobyte.String(make([]byte, sketchCellLen*2))); err == nil {
		t.Error("a sketch of 2 cells parsed")
	}
}

// TestProposalsGoWhenASketchDoesNotPeel: a requester whose sketch of an
// epoch's log is far too small (it was on the other side of a partition
// there) is told to relist, and of that log gets only what peeled, but
// the epoch's proposals all go now: a commit that refers to one it lacks
// would otherwise wait, and every epoch after it with it. Of a sketch that
// peels, a proposal the requester holds is left out.
func TestProposalsGoWhenASketchDoesNotPeel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	epoch := EpochID{7}
	info := &epochInfo{}
	var proposal [8]byte
	for i, id := range randomIDs(r, 300) {
		kind := KindApplication
		if i == 150 {
			kind, proposal = KindHandshake, id
		}
		var payload [32]byte
		copy(payload[:], id[:])
		info.log = append(info.log, newLogEntry(kind, nil, payload))
	}
	l := &Loop{epochs: map[EpochID]*epochInfo{epoch: info}}
	req := &syncRequest{nonce: [16]byte{1}}
	key := sketchKey(req.nonce)

	// The requester holds 20 of the 300 and 200 of its own: a sketch sized
	// for a difference of 5 does not peel.
	small := newLogSketch(sketchCells(5))
	for _, e := range info.log[:20] {
		small.add(key, [8]byte(e.payload[:8]), 1)
	}
	for _, id := range randomIDs(r, 200) {
		small.add(key, id, 1)
	}
	req.heldLogs = []heldLog{{epoch: epoch, sketch: small}}
	holds, _, relist := l.requesterHolds(req)
	if !relist {
		t.Fatal("a sketch of 23 cells for a difference of 480 peeled")
	}
	if holds[epoch](proposal, KindHandshake) {
		t.Error("the epoch's proposal is held back until the sketch peels")
	}

	// The requester holds all of it: the proposal is not sent again.
	full := newLogSketch(sketchCells(5))
	for _, e := range info.log {
		full.add(key, [8]byte(e.payload[:8]), 1)
	}
	req.heldLogs = []heldLog{{epoch: epoch, sketch: full}}
	holds, _, relist = l.requesterHolds(req)
	if relist || !holds[epoch](proposal, KindHandshake) {
		t.Errorf("a sketch of the same log: relist %v, proposal held %v", relist, holds[epoch](proposal, KindHandshake))
	}
}

// TestDifferenceOfALogTheHeadDoesNotCount: the estimate of how much a
// peer's log of an epoch differs from this member's counts everything
// this member holds there when the peer's head did not count the epoch:
// the head came as the epoch began (heads are not renewed on messages)
// or is on another chain. Both used to count as no difference, and a
// sketch of 16 cells went for hundreds (over 40 seeds of the busy-epoch
// scenario, a third of the sketches that did not peel).
func TestDifferenceOfALogTheHeadDoesNotCount(t *testing.T) {
	info := &epochInfo{node: &Node{Number: 5}, appCount: 300}
	listed := headView{epoch: 5, logs: []LogDigest{{Epoch: 5, Count: 290}, {Epoch: 4, Count: 10}}, held: []uint32{280, 10}}
	early := headView{epoch: 5, logs: []LogDigest{{Epoch: 4, Count: 10}}, held: []uint32{10}}
	for _, c := range []struct {
		name    string
		view    headView
		onChain bool
		want    int
	}{
		{"listed", listed, true, (290 - 280) + (300 - 290)},
		{"not listed", early, true, 300},
		{"on another chain", listed, false, 300},
	} {
		got, ok := c.view.difference(info, c.onChain)
		if !ok || got != c.want {
			t.Errorf("%s: difference %d, %v; want %d, true", c.name, got, ok, c.want)
		}
	}
	var deep headView
	for n := uint64(21); len(deep.logs) < logDigests; n-- {
		deep.logs = append(deep.logs, LogDigest{Epoch: n, Count: 1})
	}
	if _, ok := deep.difference(info, true); ok {
		t.Error("a head listing only epochs above the log's gave an estimate")
	}
}
