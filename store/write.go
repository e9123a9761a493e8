package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// maxConflictRetries bounds how often Write retries a transaction that
// conflicted with another transaction touching the same keys (Writes
// themselves commit one group after the other, see commit.go).
const maxConflictRetries = 16

// Write commits every op of the given batches in one badger transaction and
// returns once it is durable on disk (fsync), or returns an error and
// nothing of them is visible. Batches recorded with an invalid argument
// fail the Write before anything is done.
//
// Writes made at the same moment share a transaction (see commit.go):
// each stays atomic and is acknowledged only once durable.
func (s *Store) Write(ctx context.Context, batches ...*Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := 0
	for _, b := range batches {
		if b.err != nil {
			return b.err
		}
		n += len(b.ops)
	}
	if n == 0 {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.commits.commit(s, &commitReq{ctx: ctx, batches: batches, ops: n})
}

// writeBatches commits the batches in one transaction, retrying on conflicts
// with the store's other transactions (settings taken, peers).
func (s *Store) writeBatches(ctx context.Context, batches []*Batch, n int) error {
	var size int64
	for _, b := range batches {
		size += b.bytes()
	}
	if err := s.space.check(size, 0); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := s.db.Update(func(txn *badger.Txn) error {
			w := &writer{txn: txn, registered: map[string]bool{}, next: map[string]uint64{}}
			for _, b := range batches {
				for i := range b.ops {
					if err := w.apply(&b.ops[i]); err != nil {
						return err
					}
				}
			}
			return w.finish()
		})
		if err == nil {
			return nil
		}
		for _, b := range batches {
			for i := range b.ops {
				if r := b.ops[i].result; r != nil {
					r.seq = 0
				}
			}
		}
		if errors.Is(err, badger.ErrConflict) && attempt < maxConflictRetries {
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		switch {
		case errors.Is(err, badger.ErrTxnTooBig):
			return fmt.Errorf("%w: %d ops", ErrTooLarge, n)
		case errors.Is(err, ErrDuplicate), errors.Is(err, ErrNotFound), errors.Is(err, ErrCorrupt):
			return err
		}
		return fmt.Errorf("store: write: %w", err)
	}
}

// writer applies ops inside one transaction. It caches what it learned of
// each group (registered in the group index, last log sequence number) for
// the rest of the transaction. A group's last log sequence number is
// written once, by finish, however many entries the transaction appends
// (issue 17: a round of n received messages appends 2n entries).
type writer struct {
	txn        *badger.Txn
	registered map[string]bool
	next       map[string]uint64 // group -> last used log sequence number
	appended   map[string]bool   // groups whose next must be written
}

// finish writes what the transaction's ops left to write at its end.
func (w *writer) finish() error {
	for g := range w.appended {
		if err := set(w.txn, logNextKey([]byte(g)), u64(w.next[g])); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) apply(o *op) error {
	t := w.txn
	switch o.kind {
	case opPutEpoch:
		if err := w.register(o.group); err != nil {
			return err
		}
		if err := set(t, epochKey(o.group, o.id, epochNumber), u64(o.num)); err != nil {
			return err
		}
		return set(t, epochKey(o.group, o.id, epochSnapshot), o.value)
	case opDeleteEpoch:
		if err := t.Delete(epochKey(o.group, o.id, epochNumber)); err != nil {
			return err
		}
		return t.Delete(epochKey(o.group, o.id, epochSnapshot))
	case opSetHead:
		if err := w.register(o.group); err != nil {
			return err
		}
		return set(t, headKey(o.group), o.value)
	case opAppendLog:
		return w.appendLog(o)
	case opSetLogResult:
		if _, err := t.Get(logKey(o.group, o.num, logEntry)); errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: group %x has no log entry %d", ErrNotFound, prefix(o.group), o.num)
		} else if err != nil {
			return err
		}
		return set(t, logKey(o.group, o.num, logResult), o.value)
	case opPutOutbox:
		if err := w.register(o.group); err != nil {
			return err
		}
		return set(t, outboxKey(o.group, o.id), o.value)
	case opDeleteOutbox:
		return t.Delete(outboxKey(o.group, o.id))
	case opMarkDelivered:
		return w.markDelivered(o)
	case opPruneDelivered:
		return w.pruneDelivered(o)
	case opPutKeyPackage, opPutSetting, opPutIdentity:
		return set(t, o.key, o.value)
	case opDeleteKeyPackage, opDeleteSetting:
		return t.Delete(o.key)
	case opDeleteGroup:
		return w.deleteGroup(o.group)
	case opDeleteLog:
		return w.deleteLog(o.group, o.num)
	}
	panic(fmt.Sprintf("store: unknown op %d", o.kind))
}

func (w *writer) register(group []byte) error {
	if w.registered[string(group)] {
		return nil
	}
	k := groupIndexKey(group)
	_, err := w.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = set(w.txn, k, []byte{})
	}
	if err != nil {
		return err
	}
	w.registered[string(group)] = true
	return nil
}

func (w *writer) appendLog(o *op) error {
	t := w.txn
	g := o.group
	if err := w.register(g); err != nil {
		return err
	}
	item, err := t.Get(logIDKey(g, o.entry.ID))
	switch {
	case err == nil:
		v, err := valueOf(item)
		if err != nil {
			return err
		}
		seq, err := decodeU64(v)
		if err != nil {
			return err
		}
		return &DuplicateError{Group: g, ID: o.entry.ID, Seq: seq}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	last, ok := w.next[string(g)]
	if !ok {
		item, err := t.Get(logNextKey(g))
		switch {
		case err == nil:
			v, err := valueOf(item)
			if err != nil {
				return err
			}
			if last, err = decodeU64(v); err != nil {
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
	}
	seq := last + 1
	w.next[string(g)] = seq
	if err := set(t, logKey(g, seq, logEntry), encodeLogEntry(o.entry.ID, o.entry.Envelope)); err != nil {
		return err
	}
	if o.entry.Result != nil {
		if err := set(t, logKey(g, seq, logResult), o.entry.Result); err != nil {
			return err
		}
	}
	if err := set(t, logIDKey(g, o.entry.ID), u64(seq)); err != nil {
		return err
	}
	if w.appended == nil {
		w.appended = map[string]bool{}
	}
	w.appended[string(g)] = true
	o.result.seq = seq
	return nil
}

func (w *writer) markDelivered(o *op) error {
	t := w.txn
	g := o.group
	if err := w.register(g); err != nil {
		return err
	}
	k := deliveredKey(g, o.id)
	item, err := t.Get(k)
	switch {
	case err == nil:
		v, err := valueOf(item)
		if err != nil {
			return err
		}
		old, err := decodeU64(v)
		if err != nil {
			return err
		}
		if old == o.num {
			return nil
		}
		if err := t.Delete(deliveredByEpochKey(g, old, o.id)); err != nil {
			return err
		}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	if err := set(t, k, u64(o.num)); err != nil {
		return err
	}
	return set(t, deliveredByEpochKey(g, o.num, o.id), []byte{})
}

func (w *writer) pruneDelivered(o *op) error {
	p := deliveredByEpochPrefix(o.group)
	stop := deliveredByEpochKey(o.group, o.num, nil)
	var doomed [][]byte
	err := w.keys(p, func(k []byte) bool {
		if bytes.Compare(k, stop) >= 0 {
			return false
		}
		doomed = append(doomed, k)
		return true
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		msgID := k[len(p)+8:]
		if err := w.txn.Delete(k); err != nil {
			return err
		}
		if err := w.txn.Delete(deliveredKey(o.group, msgID)); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) deleteGroup(group []byte) error {
	var doomed [][]byte
	err := w.keys(groupPrefix(group), func(k []byte) bool {
		doomed = append(doomed, k)
		return true
	})
	if err != nil {
		return err
	}
	doomed = append(doomed, groupIndexKey(group))
	for _, k := range doomed {
		if err := w.txn.Delete(k); err != nil {
			return err
		}
	}
	delete(w.registered, string(group))
	delete(w.next, string(group))
	delete(w.appended, string(group))
	return nil
}

// keys calls fn with a copy of every key under prefix, in order, as this
// transaction sees them (its own pending writes included), until fn returns
// false.
func (w *writer) keys(prefix []byte, fn func(k []byte) bool) error {
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(prefix); it.Valid(); it.Next() {
		if !fn(it.Item().KeyCopy(nil)) {
			break
		}
	}
	return nil
}

// deleteLog deletes one log entry with its result and ID index.
func (w *writer) deleteLog(group []byte, seq uint64) error {
	t := w.txn
	item, err := t.Get(logKey(group, seq, logEntry))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	v, err := valueOf(item)
	if err != nil {
		return err
	}
	id, _, err := decodeLogEntry(v)
	if err != nil {
		return err
	}
	for _, k := range [][]byte{logKey(group, seq, logEntry), logKey(group, seq, logResult), logIDKey(group, id)} {
		if err := t.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
