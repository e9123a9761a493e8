package group

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-p2p/parley/mls/wire"
)

// floodAdds has member i propose n Adds, each received by every other
// member, and returns their ProposalRefs in the order sent. With same,
// every Add carries one KeyPackage, so that at most one of them can be
// committed.
func (f *fixture) floodAdds(i, n int, same bool) [][]byte {
	f.t.Helper()
	var refs [][]byte
	kp := newTestBundle(f.t, f.cfg, "flood", nil)
	for k := range n {
		if !same {
			kp = newTestBundle(f.t, f.cfg, fmt.Sprintf("flood-%d", k), nil)
		}
		msg, ref, err := f.members[i].Propose(&wire.Add{KeyPackage: *kp.KeyPackage}, true, nil)
		if err != nil {
			f.t.Fatal(err)
		}
		f.deliver(i, msg)
		refs = append(refs, ref)
	}
	return refs
}

// A member that floods an epoch with proposals gets no more of them into
// a commit than MaxPendingPerSender, the first it sent; another member's
// proposal still goes in, and every member takes the commit.
func TestCommitTakesAtMostMaxPendingPerSender(t *testing.T) {
	for _, tc := range []struct {
		name      string
		same      bool // one KeyPackage in every Add: the list is invalid
		max, want int  // the bound, and the flooder's proposals committed
	}{
		{"bounded", false, 8, 8},
		{"unbounded", false, 0, 40},
		{"one client, bounded", true, 8, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			flood := f.floodAdds(1, 40, tc.same)
			other := f.floodAdds(2, 1, false)[0]
			sc, err := f.members[3].Commit(CommitOptions{IncludePending: true, MaxPendingPerSender: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			var fromFlooder [][]byte
			var otherIn bool
			for _, p := range sc.Proposals {
				switch {
				case p.Sender == wire.MemberSender(1):
					fromFlooder = append(fromFlooder, p.Ref)
				case bytes.Equal(p.Ref, other):
					otherIn = true
				}
			}
			if len(fromFlooder) != tc.want || !otherIn {
				t.Fatalf("committed %d of the flooder's proposals and the other's: %v; want %d and true", len(fromFlooder), otherIn, tc.want)
			}
			for k, ref := range fromFlooder {
				if !bytes.Equal(ref, flood[k]) {
					t.Fatalf("flooder's proposal %d committed is not the %d-th it sent", k, k)
				}
			}
			f.adoptAll(3, sc)
		})
	}
}

// BenchmarkCommitAfterAFlood: one member proposed 300 Adds of distinct
// clients and then two of one more client, which make the whole list
// invalid, so the committer keeps the cached proposals that leave it
// valid one at a time (keepValid). Unbounded, the commit's time and size
// grow with the flood; with the node's bound (ordering's
// MaxProposalsPerSender) they do not. commit-bytes is the commit's size.
//
//	go test -run XXX -bench CommitAfterAFlood ./mls/group/
func BenchmarkCommitAfterAFlood(b *testing.B) {
	for _, max := range []int{0, 64} {
		b.Run(fmt.Sprintf("max=%d", max), func(b *testing.B) {
			f := newFixture(b, fixtureOptions{})
			f.floodAdds(1, 300, false)
			dup := newTestBundle(b, f.cfg, "dup", nil)
			for range 2 {
				msg, _, err := f.members[1].Propose(&wire.Add{KeyPackage: *dup.KeyPackage}, true, nil)
				if err != nil {
					b.Fatal(err)
				}
				f.deliver(1, msg)
			}
			var size int
			for b.Loop() {
				sc, err := f.members[3].Commit(CommitOptions{IncludePending: true, MaxPendingPerSender: max})
				if err != nil {
					b.Fatal(err)
				}
				size = len(sc.Message)
			}
			b.ReportMetric(float64(size), "commit-bytes")
		})
	}
}
