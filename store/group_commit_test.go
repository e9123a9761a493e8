package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Writes made at the same moment share a transaction (commit.go). These
// tests check that each keeps its own outcome and that what was
// acknowledged survives a SIGKILL, whichever group it was committed in.

func TestWritesCommittedTogetherKeepTheirOwnOutcome(t *testing.T) {
	s := openPlain(t, filepath.Join(t.TempDir(), "db"))
	g := []byte("group")
	first := s.NewBatch()
	first.AppendLog(g, LogEntry{ID: []byte("taken"), Envelope: []byte("e0")})
	if err := s.Write(ctx, first); err != nil {
		t.Fatal(err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	var reqs []*commitReq
	var handles []*Appended
	add := func(c context.Context, id string) {
		b := s.NewBatch()
		handles = append(handles, b.AppendLog(g, LogEntry{ID: []byte(id), Envelope: []byte("e-" + id)}))
		reqs = append(reqs, &commitReq{ctx: c, batches: []*Batch{b}, ops: 1})
	}
	add(ctx, "a")
	add(ctx, "taken")  // a duplicate: fails alone
	add(canceled, "c") // its caller gave up: not written
	add(ctx, "d")
	s.commitGroup(reqs)

	tests := []struct {
		id      string
		wantErr error
		wantSeq uint64
	}{{"a", nil, 2}, {"taken", ErrDuplicate, 0}, {"c", context.Canceled, 0}, {"d", nil, 3}}
	for i, tt := range tests {
		if err := reqs[i].err; !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("write of %q: got %v, want %v", tt.id, err, tt.wantErr)
		}
		if got := handles[i].Seq(); got != tt.wantSeq {
			t.Errorf("write of %q: seq %d, want %d", tt.id, got, tt.wantSeq)
		}
	}
	log, err := s.Log(ctx, g, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range log {
		got = append(got, fmt.Sprintf("%d:%s", r.Seq, r.ID))
	}
	if want := "1:taken 2:a 3:d"; strings.Join(got, " ") != want {
		t.Errorf("log: got %q, want %q", strings.Join(got, " "), want)
	}
}

func TestConcurrentWritesToOneGroupGetDistinctSeqs(t *testing.T) {
	s := openPlain(t, filepath.Join(t.TempDir(), "db"))
	g := []byte("group")
	const writers, each = 16, 20
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				b := s.NewBatch()
				a := b.AppendLog(g, LogEntry{ID: fmt.Appendf(nil, "%d-%d", w, i), Envelope: []byte("e")})
				if err := s.Write(ctx, b); err != nil {
					t.Error(err)
					return
				}
				seqs <- a.Seq()
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for q := range seqs {
		if q == 0 || q > writers*each || seen[q] {
			t.Errorf("seq %d out of range or given twice", q)
		}
		seen[q] = true
	}
	if last, err := s.LastSeq(ctx, g); err != nil || last != writers*each {
		t.Errorf("last seq %d (%v), want %d", last, err, writers*each)
	}
}

// groupedChildEnv, set beside crashChildEnv, makes the child run
// groupedChild.
const (
	groupedChildEnv = "PARLEY_STORE_GROUPED_CHILD"
	groupedWriters  = 8
)

func groupedGroup(w int) []byte { return fmt.Appendf(nil, "grouped-%d", w) }

// groupedChild has groupedWriters goroutines write at once, each to a
// group of its own: Write i appends entry i and sets the head to i, and
// "ack W I" is printed once it returned. Each goroutine goes on from the
// head the store holds.
func groupedChild(dir, keyFile string) int {
	s, err := Open(dir, crashOptions(keyFile)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 3
	}
	var mu sync.Mutex
	errc := make(chan error, groupedWriters)
	for w := range groupedWriters {
		g := groupedGroup(w)
		h, err := groupedHead(s, g)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child head:", err)
			return 3
		}
		go func() {
			for i := h + 1; ; i++ {
				b := s.NewBatch()
				b.AppendLog(g, LogEntry{ID: fmt.Appendf(nil, "entry-%d", i), Envelope: bytes.Repeat([]byte{byte(i)}, 100+int(i%5)*300)})
				b.SetHead(g, strconv.AppendUint(nil, i, 10))
				if err := s.Write(ctx, b); err != nil {
					errc <- err
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d\n", w, i) // os.Stdout is unbuffered
				mu.Unlock()
			}
		}()
	}
	fmt.Fprintln(os.Stderr, "child write:", <-errc)
	return 3
}

func groupedHead(s *Store, g []byte) (uint64, error) {
	h, err := s.Head(ctx, g)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(h), 10, 64)
}

// TestGroupedWritesSurviveSIGKILL kills, with SIGKILL, a child whose
// writers write at the same moment (so that their Writes share
// transactions), after a random number of acknowledgements, and checks
// after each kill that every writer's group holds at least what was
// acknowledged, head and log agreeing (each Write whole or absent).
// PARLEY_CRASH_SEED=n replays a run.
func TestGroupedWritesSurviveSIGKILL(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PARLEY_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (replay with PARLEY_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := filepath.Join(t.TempDir(), "db")
	keyFile := filepath.Join(t.TempDir(), "key")
	acked := make([]uint64, groupedWriters)
	total := 0
	for kill := 1; kill <= 20; kill++ {
		n, stderr, err := runGroupedChild(dir, keyFile, 1+rng.IntN(400), acked)
		if err != nil {
			t.Fatalf("seed %d, kill %d: %v\nchild stderr:\n%s", seed, kill, err, stderr)
		}
		total += n
		s, err := Open(dir, crashOptions(keyFile)...)
		if err != nil {
			t.Fatalf("seed %d, kill %d: reopen: %v", seed, kill, err)
		}
		for w := range groupedWriters {
			g := groupedGroup(w)
			h, err := groupedHead(s, g)
			if err != nil {
				t.Fatalf("seed %d, kill %d: writer %d: head: %v", seed, kill, w, err)
			}
			if h < acked[w] {
				t.Fatalf("seed %d, kill %d: writer %d: store holds write %d, but %d was acknowledged", seed, kill, w, h, acked[w])
			}
			last, err := s.LastSeq(ctx, g)
			if err != nil || last != h {
				t.Fatalf("seed %d, kill %d: writer %d: head says write %d, log has %d entries (%v)", seed, kill, w, h, last, err)
			}
			if h > 0 {
				r, err := s.LogByID(ctx, g, fmt.Appendf(nil, "entry-%d", h))
				if err != nil || r.Seq != h {
					t.Fatalf("seed %d, kill %d: writer %d: entry %d at seq %d (%v)", seed, kill, w, h, r.Seq, err)
				}
			}
			acked[w] = h
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d writes acknowledged across 20 kills", total)
}

// runGroupedChild runs groupedChild, kills it after killAfter
// acknowledgements, records the acknowledged writes in acked and returns
// how many there were.
func runGroupedChild(dir, keyFile string, killAfter int, acked []uint64) (int, string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashKeyFileEnv+"="+keyFile, groupedChildEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, "", err
	}
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	bound := time.AfterFunc(time.Minute, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer bound.Stop()
	n, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		// Lines read after the kill were written before it: those
		// writes were acknowledged too.
		var w int
		var i uint64
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &w, &i); err != nil || w < 0 || w >= len(acked) {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			return n, stderr.String(), fmt.Errorf("child printed %q", sc.Text())
		}
		if i != acked[w]+1 {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			return n, stderr.String(), fmt.Errorf("writer %d acknowledged write %d after %d", w, i, acked[w])
		}
		acked[w] = i
		n++
		if n == killAfter && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	werr := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return n, stderr.String(), fmt.Errorf("child did not die of SIGKILL: %v", werr)
	}
	return n, stderr.String(), nil
}
