package store

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// Benchmarks use a real encrypted store (key file) with durable writes,
// as a node runs it. Run: go test -run '^$' -bench . -benchtime 2s ./store/

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "db"), WithKeyFile(filepath.Join(b.TempDir(), "key")), WithGCInterval(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// BenchmarkDurableWrite is the latency of one acknowledged write: a
// received message appended to the log with its delivered mark.
func BenchmarkDurableWrite(b *testing.B) {
	s := openBench(b)
	g := []byte("bench-group")
	env := randomBytes(1024)
	for i := 0; b.Loop(); i++ {
		batch := s.NewBatch()
		id := fmt.Appendf(nil, "env-%d", i)
		batch.AppendLog(g, LogEntry{ID: id, Envelope: env, Result: []byte("ok")})
		batch.MarkDelivered(g, id, 1)
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchedReceive commits n received messages (1 KiB envelopes) per
// transaction; msgs/s shows the gain of batching.
func BenchmarkBatchedReceive(b *testing.B) {
	for _, n := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("per_txn=%d", n), func(b *testing.B) {
			s := openBench(b)
			g := []byte("bench-group")
			env := randomBytes(1024)
			msgs := 0
			for i := 0; b.Loop(); i++ {
				batches := make([]*Batch, n)
				for j := range batches {
					batches[j] = s.NewBatch()
					id := fmt.Appendf(nil, "env-%d-%d", i, j)
					batches[j].AppendLog(g, LogEntry{ID: id, Envelope: env, Result: []byte("ok")})
					batches[j].MarkDelivered(g, id, 1)
				}
				if err := s.Write(ctx, batches...); err != nil {
					b.Fatal(err)
				}
				msgs += n
			}
			b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// snapshotSizes are the sizes of a member's serialized MLS state
// (group.State.MarshalBinary, suite 1, steady-state tree) measured on the
// group engine: 278,679 bytes at 1,000 members and 2,789,679 at 10,000
// (279 bytes per member). The store sees opaque bytes, so random bytes of
// those sizes stand in for them.
var snapshotSizes = []struct {
	members int
	bytes   int
}{{1000, 278_679}, {10_000, 2_789_679}}

// BenchmarkSnapshotWrite writes a new epoch snapshot, deletes the one that
// left retention and moves the head, in one durable write.
func BenchmarkSnapshotWrite(b *testing.B) {
	for _, sz := range snapshotSizes {
		b.Run(fmt.Sprintf("members=%d", sz.members), func(b *testing.B) {
			s := openBench(b)
			g := []byte("bench-group")
			snap := randomBytes(sz.bytes)
			b.SetBytes(int64(sz.bytes))
			for i := 0; b.Loop(); i++ {
				batch := s.NewBatch()
				batch.PutEpoch(g, fmt.Appendf(nil, "epoch-%d", i), uint64(i), snap)
				if i >= 4 {
					batch.DeleteEpoch(g, fmt.Appendf(nil, "epoch-%d", i-4))
				}
				batch.SetHead(g, fmt.Appendf(nil, "head-%d", i))
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSnapshotRead reads an epoch snapshot back (checksums checked,
// decrypted, copied).
func BenchmarkSnapshotRead(b *testing.B) {
	for _, sz := range snapshotSizes {
		b.Run(fmt.Sprintf("members=%d", sz.members), func(b *testing.B) {
			s := openBench(b)
			g := []byte("bench-group")
			batch := s.NewBatch()
			batch.PutEpoch(g, []byte("epoch"), 1, randomBytes(sz.bytes))
			if err := s.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sz.bytes))
			for b.Loop() {
				snap, _, err := s.Epoch(ctx, g, []byte("epoch"))
				if err != nil || len(snap) != sz.bytes {
					b.Fatalf("Epoch: %d bytes, %v", len(snap), err)
				}
			}
		})
	}
}

// BenchmarkConcurrentWrites has writers goroutines each write received
// messages (a 1 KiB envelope and its delivered mark) to a group of its
// own, one Write at a time, as the groups of one node do; msgs/s is the
// store's throughput when writes arrive at the same moment.
func BenchmarkConcurrentWrites(b *testing.B) {
	for _, writers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openBench(b)
			env := randomBytes(1024)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range writers {
				wg.Go(func() {
					g := fmt.Appendf(nil, "bench-group-%d", w)
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						batch := s.NewBatch()
						id := fmt.Appendf(nil, "env-%d", i)
						batch.AppendLog(g, LogEntry{ID: id, Envelope: env, Result: []byte("ok")})
						batch.MarkDelivered(g, id, 1)
						if err := s.Write(ctx, batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
