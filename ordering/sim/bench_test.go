package sim

import (
	"fmt"
	"testing"

	"github.com/parley-p2p/parley/ordering"
)

// BenchmarkApplicationMessage measures what the ordering layer costs per
// application message on top of MLS: the sender's Handle(SendMessage)
// (protect, outbox, log, delivery to itself) and a receiver's
// Handle(Inbound) (decode, dedupe, unprotect, log, exactly-once delivery),
// in a real group of suite 1 set up by the simulator. Compare with
// mls/group's BenchmarkApplicationMessage (MLS protect and unprotect
// alone):
//
//	go test -run XXX -bench ApplicationMessage -benchmem ./ordering/sim/ ./mls/group/
func BenchmarkApplicationMessage(b *testing.B) {
	for _, n := range []int{10, 100} {
		cfg := DefaultConfig(1, n)
		cfg.MessageRate, cfg.OpRate, cfg.DropRate, cfg.DupRate = 0, 0, 0, 0
		s := New(cfg)
		s.setup()
		if !s.setupOK {
			b.Fatalf("%d members: setup failed", n)
		}
		receiver := s.byName["m1"]
		// Each sub-benchmark has its own sender: a receiver refuses a
		// generation too far ahead of the last it saw.
		send := func(sender *node) []byte {
			out := sender.loop.Handle(s.now, ordering.SendMessage{ContentType: 1, Body: make([]byte, 256)})
			for _, e := range out.Publish {
				if env, err := ordering.DecodeEnvelope(e); err == nil && env.Kind == ordering.KindApplication {
					return e
				}
			}
			b.Fatal("no application message published")
			return nil
		}
		b.Run(fmt.Sprintf("members=%d/send", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				send(s.byName["m2"])
			}
		})
		b.Run(fmt.Sprintf("members=%d/receive", n), func(b *testing.B) {
			b.ReportAllocs()
			// Batches of 512: what a batch leaves over when a run ends
			// stays within the receiver's forward limit (1024) at the
			// next run (-count).
			envs := make([][]byte, 0, 512)
			next := 0
			for range b.N {
				if next == len(envs) {
					b.StopTimer()
					envs, next = envs[:0], 0
					for range cap(envs) {
						envs = append(envs, send(s.byName["m0"]))
					}
					b.StartTimer()
				}
				out := receiver.loop.Handle(s.now, ordering.Inbound{From: "m0", Data: envs[next]})
				if len(out.Deliveries) != 1 {
					b.Fatalf("%d deliveries", len(out.Deliveries))
				}
				next++
			}
		})
	}
}
