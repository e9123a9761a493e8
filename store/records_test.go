package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

var ctx = context.Background()

func TestEveryRecordKindReadsBackAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openPlain(t, dir)
	g := []byte("group-1")
	b := s.NewBatch()
	b.PutEpoch(g, []byte("epoch-a"), 7, []byte("snap-a"))
	b.PutEpoch(g, []byte("epoch-b"), 8, []byte("snap-b"))
	b.SetHead(g, []byte("head"))
	a1 := b.AppendLog(g, LogEntry{ID: []byte("env-1"), Envelope: []byte("E1"), Result: []byte("R1")})
	a2 := b.AppendLog(g, LogEntry{ID: []byte("env-2"), Envelope: []byte("E2")})
	b.PutOutbox(g, []byte("msg-1"), []byte("out-1"))
	b.MarkDelivered(g, []byte("msg-0"), 7)
	b.PutKeyPackage([]byte("kp"), []byte("priv"))
	b.PutSetting("node", "nick", []byte("alice"))
	b.PutIdentity("mls-signature", []byte("sig-key"))
	mustWrite(t, s, b)
	if a1.Seq() != 1 || a2.Seq() != 2 {
		t.Fatalf("appended seqs = %d, %d; want 1, 2", a1.Seq(), a2.Seq())
	}
	if err := s.PutPeer(ctx, "peer-1", []byte("addrs")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openPlain(t, dir)

	snap, epoch, err := s.Epoch(ctx, g, []byte("epoch-b"))
	if err != nil || string(snap) != "snap-b" || epoch != 8 {
		t.Errorf("Epoch = %q, %d, %v; want snap-b, 8", snap, epoch, err)
	}
	eps, err := s.Epochs(ctx, g)
	want := []EpochInfo{{[]byte("epoch-a"), 7}, {[]byte("epoch-b"), 8}}
	if err != nil || !reflect.DeepEqual(eps, want) {
		t.Errorf("Epochs = %v, %v; want %v", eps, err, want)
	}
	if h, err := s.Head(ctx, g); err != nil || string(h) != "head" {
		t.Errorf("Head = %q, %v", h, err)
	}
	if gs, err := s.Groups(ctx); err != nil || len(gs) != 1 || !bytes.Equal(gs[0], g) {
		t.Errorf("Groups = %q, %v", gs, err)
	}
	log, err := s.Log(ctx, g, 0, 0)
	wantLog := []LogRecord{
		{1, LogEntry{[]byte("env-1"), []byte("E1"), []byte("R1")}},
		{2, LogEntry{[]byte("env-2"), []byte("E2"), nil}},
	}
	if err != nil || !reflect.DeepEqual(log, wantLog) {
		t.Errorf("Log = %+v, %v; want %+v", log, err, wantLog)
	}
	if r, err := s.LogByID(ctx, g, []byte("env-1")); err != nil || !reflect.DeepEqual(r, wantLog[0]) {
		t.Errorf("LogByID = %+v, %v", r, err)
	}
	if n, err := s.LastSeq(ctx, g); err != nil || n != 2 {
		t.Errorf("LastSeq = %d, %v; want 2", n, err)
	}
	if ob, err := s.Outbox(ctx, g); err != nil || !reflect.DeepEqual(ob, []OutboxRecord{{[]byte("msg-1"), []byte("out-1")}}) {
		t.Errorf("Outbox = %q, %v", ob, err)
	}
	if r, err := s.OutboxRecord(ctx, g, []byte("msg-1")); err != nil || string(r) != "out-1" {
		t.Errorf("OutboxRecord(msg-1) = %q, %v", r, err)
	}
	if _, err := s.OutboxRecord(ctx, g, []byte("msg-2")); !errors.Is(err, ErrNotFound) {
		t.Errorf("OutboxRecord(msg-2) = %v, want ErrNotFound", err)
	}
	if ok, err := s.Delivered(ctx, g, []byte("msg-0")); err != nil || !ok {
		t.Errorf("Delivered(msg-0) = %v, %v; want true", ok, err)
	}
	if ok, err := s.Delivered(ctx, g, []byte("msg-1")); err != nil || ok {
		t.Errorf("Delivered(msg-1) = %v, %v; want false", ok, err)
	}
	if v, err := s.KeyPackage(ctx, []byte("kp")); err != nil || string(v) != "priv" {
		t.Errorf("KeyPackage = %q, %v", v, err)
	}
	if v, err := s.Setting(ctx, "node", "nick"); err != nil || string(v) != "alice" {
		t.Errorf("Setting = %q, %v", v, err)
	}
	if v, err := s.Identity(ctx, "mls-signature"); err != nil || string(v) != "sig-key" {
		t.Errorf("Identity = %q, %v", v, err)
	}
	if p, err := s.Peers(ctx); err != nil || !reflect.DeepEqual(p, map[string][]byte{"peer-1": []byte("addrs")}) {
		t.Errorf("Peers = %q, %v", p, err)
	}
}

func TestMissingRecordsReportErrNotFound(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g := []byte("g")
	checks := map[string]error{}
	_, _, checks["Epoch"] = s.Epoch(ctx, g, []byte("e"))
	_, checks["Head"] = s.Head(ctx, g)
	_, checks["LogByID"] = s.LogByID(ctx, g, []byte("id"))
	_, checks["KeyPackage"] = s.KeyPackage(ctx, []byte("kp"))
	_, checks["Setting"] = s.Setting(ctx, "a", "b")
	_, checks["Identity"] = s.Identity(ctx, "x")
	for name, err := range checks {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: got %v, want ErrNotFound", name, err)
		}
	}
	if log, err := s.Log(ctx, g, 0, 0); err != nil || len(log) != 0 {
		t.Errorf("Log of unknown group = %v, %v; want empty", log, err)
	}
}

func TestFailedWriteLeavesNothingBehind(t *testing.T) {
	g := []byte("g")
	tests := []struct {
		name   string
		break_ func(b *Batch)
		want   error
	}{
		{"duplicate log ID in the log", func(b *Batch) { b.AppendLog(g, LogEntry{ID: []byte("old")}) }, ErrDuplicate},
		{"duplicate log ID in the write", func(b *Batch) {
			b.AppendLog(g, LogEntry{ID: []byte("twice")})
			b.AppendLog(g, LogEntry{ID: []byte("twice")})
		}, ErrDuplicate},
		{"result for a missing log entry", func(b *Batch) { b.SetLogResult(g, 99, []byte("r")) }, ErrNotFound},
		{"empty group ID", func(b *Batch) { b.SetHead(nil, []byte("h")) }, ErrInvalidArgument},
		{"oversized message ID", func(b *Batch) { b.PutOutbox(g, make([]byte, 256), nil) }, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openPlain(t, t.TempDir())
			first := s.NewBatch()
			first.AppendLog(g, LogEntry{ID: []byte("old"), Envelope: []byte("x")})
			first.SetHead(g, []byte("head-1"))
			mustWrite(t, s, first)

			good := s.NewBatch()
			good.SetHead(g, []byte("head-2"))
			a := good.AppendLog(g, LogEntry{ID: []byte("new")})
			good.PutKeyPackage([]byte("kp"), []byte("k"))
			bad := s.NewBatch()
			tt.break_(bad)
			err := s.Write(ctx, good, bad)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Write: got %v, want %v", err, tt.want)
			}
			if a.Seq() != 0 {
				t.Errorf("Appended.Seq after a failed Write = %d, want 0", a.Seq())
			}
			if h, _ := s.Head(ctx, g); string(h) != "head-1" {
				t.Errorf("Head = %q, want head-1", h)
			}
			if n, _ := s.LastSeq(ctx, g); n != 1 {
				t.Errorf("LastSeq = %d, want 1", n)
			}
			if _, err := s.KeyPackage(ctx, []byte("kp")); !errors.Is(err, ErrNotFound) {
				t.Errorf("KeyPackage after failed Write: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestDuplicateErrorNamesTheLoggedEntry(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g := []byte("g")
	b := s.NewBatch()
	b.AppendLog(g, LogEntry{ID: []byte("a")})
	b.AppendLog(g, LogEntry{ID: []byte("b")})
	mustWrite(t, s, b)
	b = s.NewBatch()
	b.AppendLog(g, LogEntry{ID: []byte("b")})
	var dup *DuplicateError
	if err := s.Write(ctx, b); !errors.As(err, &dup) || dup.Seq != 2 {
		t.Fatalf("Write of a replayed entry: got %v, want *DuplicateError with Seq 2", err)
	}
}

func TestSetLogResultReplacesOnlyTheResult(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g := []byte("g")
	b := s.NewBatch()
	a := b.AppendLog(g, LogEntry{ID: []byte("id"), Envelope: []byte("env"), Result: []byte("provisional")})
	mustWrite(t, s, b)
	b = s.NewBatch()
	b.SetLogResult(g, a.Seq(), []byte("final"))
	mustWrite(t, s, b)
	r, err := s.LogByID(ctx, g, []byte("id"))
	if err != nil || string(r.Result) != "final" || string(r.Envelope) != "env" {
		t.Fatalf("LogByID = %+v, %v; want envelope env, result final", r, err)
	}
}

func TestLogPagesFromASequenceNumber(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g := []byte("g")
	for i := range 10 {
		b := s.NewBatch()
		b.AppendLog(g, LogEntry{ID: fmt.Appendf(nil, "id-%d", i), Result: []byte{byte(i)}})
		mustWrite(t, s, b)
	}
	page, err := s.Log(ctx, g, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range page {
		seqs = append(seqs, r.Seq)
		if r.Result[0] != byte(r.Seq-1) {
			t.Errorf("entry %d has result %d", r.Seq, r.Result[0])
		}
	}
	if !reflect.DeepEqual(seqs, []uint64{4, 5, 6}) {
		t.Fatalf("Log(from 4, limit 3) seqs = %v, want [4 5 6]", seqs)
	}
}

func TestConcurrentAppendsGetContiguousSequenceNumbers(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g := []byte("g")
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b := s.NewBatch()
				b.AppendLog(g, LogEntry{ID: fmt.Appendf(nil, "%d-%d", w, i)})
				errs <- s.Write(ctx, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	log, err := s.Log(ctx, g, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range log {
		if r.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, r.Seq)
		}
	}
	if len(log) != writers*each {
		t.Fatalf("log has %d entries, want %d", len(log), writers*each)
	}
}

func TestDeleteGroupRemovesEverythingOfThatGroupOnly(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g, other := []byte("g"), []byte("g2") // "g" is a byte prefix of "g2"
	b := s.NewBatch()
	for _, grp := range [][]byte{g, other} {
		b.PutEpoch(grp, []byte("e"), 1, []byte("s"))
		b.SetHead(grp, []byte("h"))
		b.AppendLog(grp, LogEntry{ID: []byte("id"), Result: []byte("r")})
		b.PutOutbox(grp, []byte("m"), []byte("o"))
		b.MarkDelivered(grp, []byte("m"), 1)
	}
	mustWrite(t, s, b)
	b = s.NewBatch()
	b.DeleteGroup(g)
	a := b.AppendLog(g, LogEntry{ID: []byte("id")}) // recreated in the same write
	mustWrite(t, s, b)
	if a.Seq() != 1 {
		t.Errorf("first entry of a recreated group has seq %d, want 1", a.Seq())
	}
	if _, err := s.Head(ctx, g); !errors.Is(err, ErrNotFound) {
		t.Errorf("Head of deleted group: %v", err)
	}
	if eps, _ := s.Epochs(ctx, g); len(eps) != 0 {
		t.Errorf("Epochs of deleted group: %v", eps)
	}
	if ob, _ := s.Outbox(ctx, g); len(ob) != 0 {
		t.Errorf("Outbox of deleted group: %v", ob)
	}
	if ok, _ := s.Delivered(ctx, g, []byte("m")); ok {
		t.Error("delivered id of deleted group survived")
	}
	if log, _ := s.Log(ctx, g, 0, 0); len(log) != 1 || log[0].Result != nil {
		t.Errorf("Log of recreated group = %+v", log)
	}
	if eps, _ := s.Epochs(ctx, other); len(eps) != 1 {
		t.Errorf("Epochs of the other group = %v, want 1", eps)
	}
	if log, _ := s.Log(ctx, other, 0, 0); len(log) != 1 {
		t.Errorf("Log of the other group = %v, want 1 entry", log)
	}
	b = s.NewBatch()
	b.DeleteGroup(g)
	mustWrite(t, s, b)
	if gs, _ := s.Groups(ctx); len(gs) != 1 || !bytes.Equal(gs[0], other) {
		t.Errorf("Groups = %q, want [g2]", gs)
	}
}

func TestPruneDeliveredForgetsOlderEpochsOnly(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g := []byte("g")
	b := s.NewBatch()
	b.MarkDelivered(g, []byte("m1"), 1)
	b.MarkDelivered(g, []byte("m2"), 2)
	b.MarkDelivered(g, []byte("m3"), 3)
	b.MarkDelivered(g, []byte("m1"), 3) // delivered again later: moves to epoch 3
	mustWrite(t, s, b)
	b = s.NewBatch()
	b.PruneDelivered(g, 3)
	mustWrite(t, s, b)
	for id, want := range map[string]bool{"m1": true, "m2": false, "m3": true} {
		if got, err := s.Delivered(ctx, g, []byte(id)); err != nil || got != want {
			t.Errorf("Delivered(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
}

func TestSpentKeyPackageIsGoneInTheSameWrite(t *testing.T) {
	s := openPlain(t, t.TempDir())
	b := s.NewBatch()
	b.PutKeyPackage([]byte("kp"), []byte("priv"))
	mustWrite(t, s, b)
	b = s.NewBatch()
	b.DeleteKeyPackage([]byte("kp"))
	b.PutEpoch([]byte("g"), []byte("e0"), 0, []byte("joined"))
	mustWrite(t, s, b)
	if _, err := s.KeyPackage(ctx, []byte("kp")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("KeyPackage after join: %v, want ErrNotFound", err)
	}
}

func TestClosedStoreReportsErrClosed(t *testing.T) {
	s := openPlain(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.SetHead([]byte("g"), nil)
	if err := s.Write(ctx, b); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if _, err := s.Groups(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Groups after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCanceledContextWritesNothing(t *testing.T) {
	s := openPlain(t, t.TempDir())
	c, cancel := context.WithCancel(ctx)
	cancel()
	b := s.NewBatch()
	b.SetHead([]byte("g"), []byte("h"))
	if err := s.Write(c, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write: %v, want context.Canceled", err)
	}
	if _, err := s.Head(ctx, []byte("g")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Head: %v, want ErrNotFound", err)
	}
}

func TestDeleteGroupTooLargeForOneTransactionDeletesNothing(t *testing.T) {
	// A 1 MiB memtable allows about 1,600 keys per transaction.
	s := openPlain(t, t.TempDir(), withSizes(1<<20, 1<<20))
	g := []byte("g")
	for w := range 10 {
		b := s.NewBatch()
		for i := range 100 {
			b.AppendLog(g, LogEntry{ID: fmt.Appendf(nil, "%d-%d", w, i), Result: []byte("r")})
		}
		mustWrite(t, s, b)
	}
	b := s.NewBatch()
	b.DeleteGroup(g)
	if err := s.Write(ctx, b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("DeleteGroup of a large group: got %v, want ErrTooLarge", err)
	}
	if n, err := s.LastSeq(ctx, g); err != nil || n != 1000 {
		t.Fatalf("LastSeq after the refused delete = %d, %v; want 1000", n, err)
	}
}

func TestDeleteLogDropsTheEntryAndFreesItsID(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g := []byte("g")
	b := s.NewBatch()
	a1 := b.AppendLog(g, LogEntry{ID: []byte("one"), Envelope: []byte("E1"), Result: []byte("R1")})
	b.AppendLog(g, LogEntry{ID: []byte("two"), Envelope: []byte("E2")})
	mustWrite(t, s, b)
	b = s.NewBatch()
	b.DeleteLog(g, a1.Seq())
	b.DeleteLog(g, 99) // no such entry: not an error
	mustWrite(t, s, b)
	log, err := s.Log(ctx, g, 0, 0)
	if err != nil || len(log) != 1 || string(log[0].ID) != "two" {
		t.Fatalf("log after deleting entry 1 = %+v, %v", log, err)
	}
	if _, err := s.LogByID(ctx, g, []byte("one")); !errors.Is(err, ErrNotFound) {
		t.Errorf("LogByID of a deleted entry: %v, want ErrNotFound", err)
	}
	// The ID may be logged again, with a new sequence number.
	b = s.NewBatch()
	a3 := b.AppendLog(g, LogEntry{ID: []byte("one"), Envelope: []byte("E1 again")})
	mustWrite(t, s, b)
	if a3.Seq() != 3 {
		t.Errorf("re-appended entry got seq %d, want 3", a3.Seq())
	}
}

func TestDeliveredIDsListsWhatIsMarkedAndNotPruned(t *testing.T) {
	s := openPlain(t, t.TempDir())
	g := []byte("g")
	b := s.NewBatch()
	b.MarkDelivered(g, []byte("old"), 3)
	b.MarkDelivered(g, []byte("new"), 9)
	b.MarkDelivered([]byte("other"), []byte("elsewhere"), 9)
	mustWrite(t, s, b)
	b = s.NewBatch()
	b.PruneDelivered(g, 5)
	mustWrite(t, s, b)
	ids, err := s.DeliveredIDs(ctx, g)
	if err != nil || len(ids) != 1 || string(ids[0]) != "new" {
		t.Fatalf("DeliveredIDs = %q, %v; want [new]", ids, err)
	}
}

func TestSettingsListsOneScope(t *testing.T) {
	s := openPlain(t, t.TempDir())
	b := s.NewBatch()
	b.PutSetting("group", "a", []byte("1"))
	b.PutSetting("group", "b", []byte("2"))
	b.PutSetting("groups", "c", []byte("3"))
	b.PutSetting("grou", "pd", []byte("4"))
	mustWrite(t, s, b)
	got, err := s.Settings(ctx, "group")
	if err != nil || len(got) != 2 || string(got["a"]) != "1" || string(got["b"]) != "2" {
		t.Fatalf("Settings(group) = %q, %v", got, err)
	}
}
