package ordering

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// savedOf applies the Loop's outputs to a minimal in-memory store.
type savedOf struct {
	meta   []byte
	epochs map[EpochID]SavedEpoch
	outbox map[MessageID][]byte
}

func (s *savedOf) apply(out *Output) {
	c := out.Persist
	if c == nil {
		return
	}
	for _, e := range c.PutEpochs {
		s.epochs[e.ID] = e
	}
	for _, id := range c.DeleteEpochs {
		delete(s.epochs, id)
	}
	if c.Meta != nil {
		s.meta = c.Meta
	}
	for _, o := range c.Outbox {
		s.outbox[o.ID] = o.Record
	}
	for _, id := range c.OutboxDone {
		delete(s.outbox, id)
	}
}

func (s *savedOf) saved() *Saved {
	out := &Saved{Meta: s.meta}
	for _, e := range s.epochs {
		out.Epochs = append(out.Epochs, e)
	}
	for id, r := range s.outbox {
		out.Outbox = append(out.Outbox, OutboxEntry{ID: id, Record: r})
	}
	return out
}

// newAlone creates group gid with alice, its only member, at now.
func newAlone(t *testing.T, gid string, now time.Time) (Config, *Loop, *Output) {
	t.Helper()
	cs := suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	signer, err := cs.GenerateSignatureKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := group.NewKeyPackage(cs, signer, group.KeyPackageOptions{Credential: wire.NewBasicCredential([]byte("alice"))})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{MLS: &group.Config{}}
	l, out, err := Create(cfg, []byte(gid), bundle, now)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, l, out
}

// asVersion1 rewrites a saved state in the version 1 layout: no count of
// messages sent since the refresh, the outbox's epochs listed at the end
// of Meta, bare AppMessage records.
func asVersion1(t *testing.T, s *Saved) *Saved {
	t.Helper()
	in := cryptobyte.String(s.Meta)
	var version uint16
	var groupID, self, skip []byte
	var u64 uint64
	var removed bool
	if !in.ReadUint16(&version) || !codec.ReadOpaque(&in, &groupID) || !codec.ReadOpaque(&in, &self) ||
		!in.ReadBytes(&skip, 64) || !in.ReadUint64(&u64) || !in.ReadUint64(&u64) || !in.ReadUint64(&u64) ||
		!codec.ReadBool(&in, &removed) {
		t.Fatal("cannot parse the version 4 header")
	}
	headerEnd := len(s.Meta) - len(in)
	// Version 4 ends with the Welcomes waiting for finality (none here, an
	// empty vector: one byte), then lastSentAt (8 bytes) and the senders'
	// marks (none from a member alone: one byte).
	end := len(s.Meta) - 1 - 8 - 1
	if s.Meta[end] != 0 || s.Meta[len(s.Meta)-1] != 0 {
		t.Fatal("the state holds Welcomes or senders' marks, which version 1 cannot")
	}
	var b cryptobyte.Builder
	b.AddUint16(1)
	b.AddBytes(s.Meta[2:headerEnd])
	b.AddBytes(s.Meta[headerEnd+4 : end]) // drop sent_since, the Welcomes and what version 4 added
	out := &Saved{Meta: nil, Epochs: s.Epochs}
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, o := range s.Outbox {
			b.AddBytes(o.ID[:])
			b.AddBytes(o.Record[:32])
			out.Outbox = append(out.Outbox, OutboxEntry{ID: o.ID, Record: o.Record[32:]})
		}
	})
	out.Meta = b.BytesOrPanic()
	return out
}

// TestRestoreReadsVersion1: a state saved in the version 1 layout (the
// outbox's epochs in Meta) restores with the same tip and outbox, and its
// messages can still be re-sent.
func TestRestoreReadsVersion1(t *testing.T) {
	now := time.Now()
	cfg, l, out := newAlone(t, "v1 group", now)
	store := &savedOf{epochs: map[EpochID]SavedEpoch{}, outbox: map[MessageID][]byte{}}
	store.apply(out)
	var sent []MessageID
	for i := range 3 {
		out := l.Handle(now.Add(time.Duration(i)*time.Millisecond), SendMessage{ContentType: 1, Body: []byte{byte(i)}})
		store.apply(out)
		sent = append(sent, out.Sent)
	}
	store.apply(l.Flush(now.Add(time.Second)))
	if len(store.outbox) != 3 {
		t.Fatalf("%d outbox records saved, want 3", len(store.outbox))
	}
	for _, saved := range []*Saved{store.saved(), asVersion1(t, store.saved())} {
		r, err := Restore(cfg, saved, now.Add(2*time.Second))
		if err != nil {
			t.Fatalf("version %d: %v", saved.Meta[1], err)
		}
		if r.Tip().ID != l.Tip().ID || r.OutboxLen() != 3 {
			t.Fatalf("version %d: tip %v outbox %d, want %v and 3", saved.Meta[1], r.Tip().ID, r.OutboxLen(), l.Tip().ID)
		}
		for _, id := range sent {
			o := r.outbox[id]
			if o == nil || o.epoch != l.outbox[id].epoch || !bytes.Equal(o.msg.Body, l.outbox[id].msg.Body) {
				t.Fatalf("version %d: outbox message %v not restored as sent", saved.Meta[1], id)
			}
		}
	}
}

// TestSentAtIncreasesWithEveryMessage: a member's messages say a later
// time each, even sent in the same millisecond or after its clock went
// back across a restart, so that sorting by SentAt keeps its order.
func TestSentAtIncreasesWithEveryMessage(t *testing.T) {
	now := time.Now()
	cfg, l, out := newAlone(t, "sent at", now)
	store := &savedOf{epochs: map[EpochID]SavedEpoch{}, outbox: map[MessageID][]byte{}}
	store.apply(out)
	var last uint64
	check := func(l *Loop, at time.Time, what string) {
		out := l.Handle(at, SendMessage{ContentType: 1, Body: []byte(what)})
		store.apply(out)
		got := l.outbox[out.Sent].msg.SentAt
		if got <= last {
			t.Errorf("%s: SentAt %d, not after the previous %d", what, got, last)
		}
		last = got
	}
	for i := range 3 {
		check(l, now, fmt.Sprint("same millisecond ", i))
	}
	store.apply(l.Flush(now))
	r, err := Restore(cfg, store.saved(), now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	check(r, now.Add(-time.Minute), "clock a minute back after a restart")
}
