package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/store"
)

// groupStore keeps one group's ordering state in the store: epoch
// snapshots, the loop's meta as the group head, the message log (each
// entry's result is the id of the epoch it was made in), the outbox and the
// delivered ids. It is used by the group's goroutine only.
type groupStore struct {
	st  *store.Store
	gid []byte
	// seqs are the log sequence numbers of each epoch's entries, numbers
	// the epochs' numbers, logged the ids already in the log: what a
	// deleted epoch takes with it, and what not to log twice.
	seqs    map[ordering.EpochID][]logRef
	numbers map[ordering.EpochID]uint64
	logged  map[[16]byte]bool
	// keepDelivered is how many epochs below a deleted one delivered ids
	// are kept (a copy re-sent on a surviving branch may still arrive).
	keepDelivered uint64
}

// archive reads back a group's saved envelopes and outbox records for its
// loop (ordering.Archive): large ones, file chunks, are not kept in memory.
type archive struct {
	st  *store.Store
	gid []byte // set before the loop's first event
}

// Envelope returns the logged envelope whose SHA-256 is hash (the log id is
// its first 16 bytes, see logID).
func (a *archive) Envelope(hash [32]byte) ([]byte, error) {
	r, err := a.st.LogByID(context.Background(), a.gid, hash[:16])
	if err != nil {
		return nil, err
	}
	return r.Envelope, nil
}

// OutboxRecord returns the saved record of an own message.
func (a *archive) OutboxRecord(id ordering.MessageID) ([]byte, error) {
	return a.st.OutboxRecord(context.Background(), a.gid, id[:])
}

// logRef is one log entry: its sequence number and id.
type logRef struct {
	seq uint64
	id  [16]byte
}

func newGroupStore(st *store.Store, gid []byte, retention int) *groupStore {
	return &groupStore{
		st: st, gid: gid, seqs: map[ordering.EpochID][]logRef{}, numbers: map[ordering.EpochID]uint64{},
		logged: map[[16]byte]bool{}, keepDelivered: uint64(max(retention, 1)),
	}
}

func logID(env []byte) [16]byte {
	h := sha256.Sum256(env)
	return [16]byte(h[:16])
}

// load reads what the group saved, for ordering.Restore. It reports
// store.ErrNotFound if the group has no saved state.
func (g *groupStore) load(ctx context.Context) (*ordering.Saved, error) {
	meta, err := g.st.Head(ctx, g.gid)
	if err != nil {
		return nil, err
	}
	saved := &ordering.Saved{Meta: meta}
	infos, err := g.st.Epochs(ctx, g.gid)
	if err != nil {
		return nil, err
	}
	for _, e := range infos {
		snap, num, err := g.st.Epoch(ctx, g.gid, e.ID)
		if err != nil {
			return nil, err
		}
		var id ordering.EpochID
		if len(e.ID) != len(id) {
			return nil, fmt.Errorf("%w: epoch id of %d bytes", store.ErrCorrupt, len(e.ID))
		}
		copy(id[:], e.ID)
		g.numbers[id] = num
		saved.Epochs = append(saved.Epochs, ordering.SavedEpoch{ID: id, Number: num, Snapshot: snap})
	}
	log, err := g.st.Log(ctx, g.gid, 0, 0)
	if err != nil {
		return nil, err
	}
	for _, r := range log {
		var id ordering.EpochID
		var msg ordering.MessageID
		switch len(r.Result) {
		case len(id) + len(msg):
			copy(msg[:], r.Result[len(id):])
		case len(id):
		default:
			return nil, fmt.Errorf("%w: log entry %d without its epoch", store.ErrCorrupt, r.Seq)
		}
		copy(id[:], r.Result)
		if len(r.ID) != 16 {
			return nil, fmt.Errorf("%w: log entry id of %d bytes", store.ErrCorrupt, len(r.ID))
		}
		g.seqs[id] = append(g.seqs[id], logRef{r.Seq, [16]byte(r.ID)})
		g.logged[[16]byte(r.ID)] = true
		saved.Log = append(saved.Log, ordering.LogEntry{Epoch: id, Envelope: r.Envelope, Message: msg})
	}
	out, err := g.st.Outbox(ctx, g.gid)
	if err != nil {
		return nil, err
	}
	for _, o := range out {
		var id ordering.MessageID
		if len(o.MsgID) != len(id) {
			return nil, fmt.Errorf("%w: outbox id of %d bytes", store.ErrCorrupt, len(o.MsgID))
		}
		copy(id[:], o.MsgID)
		saved.Outbox = append(saved.Outbox, ordering.OutboxEntry{ID: id, Record: o.Record})
	}
	ids, err := g.st.DeliveredIDs(ctx, g.gid)
	if err != nil {
		return nil, err
	}
	for _, b := range ids {
		var id ordering.MessageID
		if len(b) == len(id) {
			copy(id[:], b)
			saved.Delivered = append(saved.Delivered, id)
		}
	}
	return saved, nil
}

// record adds the loop's changes to b. tip is the canonical epoch number
// (delivered ids are filed under it); seen are the log ids b appends
// already (record adds its own), for a write of several outputs. The
// returned function updates the groupStore's indexes once the write has
// succeeded.
func (g *groupStore) record(b *store.Batch, c *ordering.Changes, tip uint64, seen map[[16]byte]bool) func() {
	if c == nil {
		return func() {}
	}
	var deletedMax uint64
	for _, id := range c.DeleteEpochs {
		b.DeleteEpoch(g.gid, id[:])
		for _, r := range g.seqs[id] {
			b.DeleteLog(g.gid, r.seq)
		}
		deletedMax = max(deletedMax, g.numbers[id])
	}
	for _, e := range c.PutEpochs {
		b.PutEpoch(g.gid, e.ID[:], e.Number, e.Snapshot)
	}
	if c.Meta != nil {
		b.SetHead(g.gid, c.Meta)
	}
	type appended struct {
		epoch ordering.EpochID
		id    [16]byte
		a     *store.Appended
	}
	var added []appended
	for _, e := range c.Log {
		id := logID(e.Envelope)
		if g.logged[id] || seen[id] {
			continue
		}
		seen[id] = true
		epoch := e.Epoch
		// The result is the epoch's id, then the id of the message it
		// carries, if read.
		res := epoch[:]
		if e.Message != (ordering.MessageID{}) {
			res = append(res, e.Message[:]...) // res is full: a new array
		}
		a := b.AppendLog(g.gid, store.LogEntry{ID: id[:], Envelope: e.Envelope, Result: res})
		added = append(added, appended{epoch, id, a})
	}
	for _, o := range c.Outbox {
		b.PutOutbox(g.gid, o.ID[:], o.Record)
	}
	for _, id := range c.OutboxDone {
		b.DeleteOutbox(g.gid, id[:])
	}
	for _, id := range c.Delivered {
		b.MarkDelivered(g.gid, id[:], tip)
	}
	if deletedMax > g.keepDelivered {
		b.PruneDelivered(g.gid, deletedMax-g.keepDelivered)
	}
	return func() {
		for _, id := range c.DeleteEpochs {
			for _, r := range g.seqs[id] {
				delete(g.logged, r.id)
			}
			delete(g.seqs, id)
			delete(g.numbers, id)
		}
		for _, e := range c.PutEpochs {
			g.numbers[e.ID] = e.Number
		}
		for _, a := range added {
			g.seqs[a.epoch] = append(g.seqs[a.epoch], logRef{a.a.Seq(), a.id})
			g.logged[a.id] = true
		}
	}
}

// isNotFound reports whether err means there is nothing saved.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
