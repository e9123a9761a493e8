// Package driver runs the scripts of the MLS interop test framework's
// configuration files (github.com/mlswg/mls-implementations, interop/configs)
// against MLSClient servers over gRPC, as the framework's test-runner does:
// each script under every assignment of servers to its actors, in a cipher
// suite, with handshake messages encrypted or not.
//
// It follows the reference test-runner's reading of the scripts with two
// deliberate differences: the force_path and external_tree options are
// honoured under both spellings the configuration files use (forcePath,
// externalTree), so that branch.json's external_tree and force_path scripts
// test what they are named for; and choices the reference leaves to map
// order or chance (the order members handle a reinit, the suite a
// changeCipherSuite moves to) are deterministic.
package driver

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Config is a configuration file: named scripts.
type Config struct {
	Scripts map[string]Script `json:"scripts"`
}

// Script is a sequence of steps; a step refers to the outputs of earlier
// steps by their index.
type Script []Step

// Step is one action of a script, with its parameters kept raw.
type Step struct {
	Action string
	Actor  string
	raw    json.RawMessage
}

// UnmarshalJSON keeps the step's parameters for its action to decode.
func (s *Step) UnmarshalJSON(data []byte) error {
	var head struct {
		Action string `json:"action"`
		Actor  string `json:"actor"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	if head.Action == "" {
		return fmt.Errorf("driver: step without an action: %s", data)
	}
	s.Action, s.Actor, s.raw = head.Action, head.Actor, append(json.RawMessage(nil), data...)
	return nil
}

// LoadConfig reads a configuration file, plain or gzipped (.gz).
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("driver: %s: %w", path, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("driver: %s: %w", path, err)
		}
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("driver: %s: %w", path, err)
	}
	return &c, nil
}

// Names returns the config's script names in order.
func (c *Config) Names() []string {
	out := make([]string, 0, len(c.Scripts))
	for n := range c.Scripts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Actors returns the script's actors in order: those acting, the members
// createGroup adds, external joiners, new members proposing themselves
// and external signers.
func (s Script) Actors() []string {
	set := map[string]bool{}
	for _, st := range s {
		if st.Actor != "" {
			set[st.Actor] = true
		}
		var p struct {
			Members []string `json:"members"`
			Joiner  string   `json:"joiner"`
			Signer  string   `json:"signer"`
		}
		if json.Unmarshal(st.raw, &p) != nil {
			continue
		}
		switch st.Action {
		case "createGroup":
			for _, m := range p.Members {
				set[m] = true
			}
		case "externalJoin", "newMemberAddProposal":
			set[p.Joiner] = true
		case "addExternalSigner":
			set[p.Signer] = true
		}
	}
	delete(set, "")
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// PairwiseAssignments lists assignments of n servers to k actors that
// cover every pair: for any two actors and any two servers (equal or not),
// some assignment gives the first actor the first server and the second
// actor the second. MLS messages go from one member to another, so this
// puts every sender and receiver on every combination of servers with far
// fewer runs than Assignments (8 instead of 256 for 8 actors on 2
// servers). It starts with the n assignments of all actors to one server,
// then adds greedily the assignment covering most missing pairs; the
// result is deterministic.
func PairwiseAssignments(n, k int) [][]int {
	all := Assignments(n, k)
	type pair struct{ i, j, vi, vj int }
	missing := map[pair]bool{}
	for i := range k {
		for j := i + 1; j < k; j++ {
			for vi := range n {
				for vj := range n {
					missing[pair{i, j, vi, vj}] = true
				}
			}
		}
	}
	covers := func(a []int) []pair {
		var out []pair
		for i := range k {
			for j := i + 1; j < k; j++ {
				if p := (pair{i, j, a[i], a[j]}); missing[p] {
					out = append(out, p)
				}
			}
		}
		return out
	}
	var out [][]int
	take := func(a []int) {
		for _, p := range covers(a) {
			delete(missing, p)
		}
		out = append(out, a)
	}
	for v := range n {
		a := make([]int, k)
		for i := range a {
			a[i] = v
		}
		take(a)
	}
	for len(missing) > 0 {
		best, most := all[0], 0
		for _, a := range all {
			if c := len(covers(a)); c > most {
				best, most = a, c
			}
		}
		take(best)
	}
	return out
}

// Assignments lists every assignment of n servers to k actors: each is k
// server indices.
func Assignments(n, k int) [][]int {
	out := [][]int{{}}
	for range k {
		next := make([][]int, 0, len(out)*n)
		for _, a := range out {
			for v := range n {
				next = append(next, append(append(make([]int, 0, k), a...), v))
			}
		}
		out = next
	}
	return out
}
