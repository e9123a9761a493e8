package driver

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

func TestAssignmentsListEveryCombinationOnce(t *testing.T) {
	for _, tc := range []struct{ n, k, want int }{{2, 0, 1}, {2, 1, 2}, {2, 3, 8}, {3, 2, 9}, {1, 5, 1}} {
		got := Assignments(tc.n, tc.k)
		seen := map[string]bool{}
		for _, a := range got {
			seen[fmt.Sprint(a)] = true
		}
		if len(got) != tc.want || len(seen) != tc.want {
			t.Errorf("Assignments(%d, %d): %d, %d distinct, want %d", tc.n, tc.k, len(got), len(seen), tc.want)
		}
	}
}

func TestPairwiseAssignmentsPutEveryPairOfActorsOnEveryPairOfServers(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		for k := 1; k <= 8; k++ {
			got := PairwiseAssignments(n, k)
			for v := range n {
				if !slices.ContainsFunc(got, func(a []int) bool {
					return !slices.ContainsFunc(a, func(x int) bool { return x != v })
				}) {
					t.Errorf("n=%d k=%d: no assignment of everyone to server %d", n, k, v)
				}
			}
			for i := range k {
				for j := i + 1; j < k; j++ {
					for vi := range n {
						for vj := range n {
							if !slices.ContainsFunc(got, func(a []int) bool { return a[i] == vi && a[j] == vj }) {
								t.Errorf("n=%d k=%d: actors %d, %d never on servers %d, %d", n, k, i, j, vi, vj)
							}
						}
					}
				}
			}
			if all := len(Assignments(n, k)); len(got) > all {
				t.Errorf("n=%d k=%d: %d pairwise assignments, more than all %d", n, k, len(got), all)
			}
		}
	}
	if got := len(PairwiseAssignments(2, 8)); got > 8 {
		t.Errorf("8 actors on 2 servers: %d assignments, want at most 8", got)
	}
}

func TestActorsIncludeAddedMembersJoinersAndSigners(t *testing.T) {
	for _, tc := range []struct {
		file, script string
		want         []string
	}{
		{"commit.json", "add", []string{"alice", "bob", "charlie1", "charlie2", "charlie3", "charlie4", "charlie5", "charlie6"}},
		{"external_join.json", "with_more_members", []string{"alice", "bob", "charlie", "diana", "ellen"}},
		{"external_proposals.json", "joiner_signed_add", []string{"alice", "bob"}},
		{"external_proposals.json", "multiple_external", []string{"alice", "bob", "charlie", "ds1", "ds2"}},
		{"deep_random.json.gz", "random", nil},
	} {
		c, err := LoadConfig(filepath.Join("testdata", "configs", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Scripts[tc.script].Actors()
		if tc.want == nil {
			if len(got) < 100 {
				t.Errorf("%s/%s: %d actors", tc.file, tc.script, len(got))
			}
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s/%s: actors %v, want %v", tc.file, tc.script, got, tc.want)
		}
	}
}

func TestStepsWithoutAnActionAreRejected(t *testing.T) {
	var s Step
	if err := s.UnmarshalJSON([]byte(`{"actor": "alice"}`)); err == nil {
		t.Error("step without an action accepted")
	}
}
