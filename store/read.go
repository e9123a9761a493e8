package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	badger "github.com/dgraph-io/badger/v4"
)

// view runs fn in a read-only transaction: a consistent snapshot of the
// state after some Write and before the next.
func (s *Store) view(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.db.View(fn)
}

// get returns a copy of the value of key, or an error wrapping ErrNotFound
// that names what was looked for.
func get(txn *badger.Txn, key []byte, what string) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", what, err)
	}
	v, err := valueOf(item)
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", what, err)
	}
	return v, nil
}

func (s *Store) getOne(ctx context.Context, key []byte, what string) ([]byte, error) {
	var v []byte
	err := s.view(ctx, func(txn *badger.Txn) error {
		var err error
		v, err = get(txn, key, what)
		return err
	})
	return v, err
}

// scan calls fn for every item under prefix, in key order, until fn returns
// false or an error. Values are read only when fn asks the item for them.
func scan(ctx context.Context, txn *badger.Txn, prefix []byte, values bool, fn func(item *badger.Item) (bool, error)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: values, PrefetchSize: 16})
	defer it.Close()
	for it.Seek(prefix); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		more, err := fn(it.Item())
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Epoch returns the snapshot and epoch number of the epoch epochID.
func (s *Store) Epoch(ctx context.Context, group, epochID []byte) ([]byte, uint64, error) {
	if err := checkIDs(group, epochID); err != nil {
		return nil, 0, err
	}
	var snap []byte
	var epoch uint64
	err := s.view(ctx, func(txn *badger.Txn) error {
		what := fmt.Sprintf("epoch %x of group %x", prefix(epochID), prefix(group))
		v, err := get(txn, epochKey(group, epochID, epochNumber), what)
		if err != nil {
			return err
		}
		if epoch, err = decodeU64(v); err != nil {
			return err
		}
		snap, err = get(txn, epochKey(group, epochID, epochSnapshot), what)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return snap, epoch, nil
}

// Epochs lists the epochs of the group that have a snapshot, by epoch
// number and then ID.
func (s *Store) Epochs(ctx context.Context, group []byte) ([]EpochInfo, error) {
	if err := checkIDs(group); err != nil {
		return nil, err
	}
	var out []EpochInfo
	p := epochPrefix(group)
	err := s.view(ctx, func(txn *badger.Txn) error {
		return scan(ctx, txn, p, false, func(item *badger.Item) (bool, error) {
			k := item.Key()
			if k[len(k)-1] != epochNumber {
				return true, nil
			}
			v, err := valueOf(item)
			if err != nil {
				return false, err
			}
			n, err := decodeU64(v)
			if err != nil {
				return false, err
			}
			id := k[len(p) : len(k)-1]
			if len(id) == 0 || int(id[0]) != len(id)-1 {
				return false, fmt.Errorf("%w: malformed epoch key", ErrCorrupt)
			}
			out = append(out, EpochInfo{ID: bytes.Clone(id[1:]), Epoch: n})
			return true, nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Epoch != out[j].Epoch {
			return out[i].Epoch < out[j].Epoch
		}
		return bytes.Compare(out[i].ID, out[j].ID) < 0
	})
	return out, err
}

// Head returns the group's head blob.
func (s *Store) Head(ctx context.Context, group []byte) ([]byte, error) {
	if err := checkIDs(group); err != nil {
		return nil, err
	}
	return s.getOne(ctx, headKey(group), fmt.Sprintf("head of group %x", prefix(group)))
}

// Groups lists the groups that have any state, in byte order of their IDs.
func (s *Store) Groups(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	err := s.view(ctx, func(txn *badger.Txn) error {
		return scan(ctx, txn, []byte{nsGroupIndex}, false, func(item *badger.Item) (bool, error) {
			out = append(out, bytes.Clone(item.Key()[1:]))
			return true, nil
		})
	})
	return out, err
}

// Log returns up to limit entries of the group's log from sequence number
// from on (limit <= 0: all of them), in order.
func (s *Store) Log(ctx context.Context, group []byte, from uint64, limit int) ([]LogRecord, error) {
	if err := checkIDs(group); err != nil {
		return nil, err
	}
	var out []LogRecord
	p := logPrefix(group)
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(logKey(group, from, logEntry)); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			if len(k) != len(p)+9 {
				return fmt.Errorf("%w: malformed log key", ErrCorrupt)
			}
			seq, _ := decodeU64(k[len(p) : len(p)+8])
			v, err := valueOf(it.Item())
			if err != nil {
				return err
			}
			switch k[len(k)-1] {
			case logEntry:
				if limit > 0 && len(out) == limit {
					return nil
				}
				id, env, err := decodeLogEntry(v)
				if err != nil {
					return err
				}
				out = append(out, LogRecord{Seq: seq, LogEntry: LogEntry{ID: id, Envelope: env}})
			case logResult:
				if n := len(out); n > 0 && out[n-1].Seq == seq {
					out[n-1].Result = v
				}
			}
		}
		return nil
	})
	return out, err
}

// LogByID returns the log entry of the group with the given ID.
func (s *Store) LogByID(ctx context.Context, group, id []byte) (LogRecord, error) {
	if err := checkIDs(group, id); err != nil {
		return LogRecord{}, err
	}
	var rec LogRecord
	err := s.view(ctx, func(txn *badger.Txn) error {
		what := fmt.Sprintf("log entry %x of group %x", prefix(id), prefix(group))
		v, err := get(txn, logIDKey(group, id), what)
		if err != nil {
			return err
		}
		if rec.Seq, err = decodeU64(v); err != nil {
			return err
		}
		return readLogEntry(txn, group, &rec, what)
	})
	return rec, err
}

func readLogEntry(txn *badger.Txn, group []byte, rec *LogRecord, what string) error {
	v, err := get(txn, logKey(group, rec.Seq, logEntry), what)
	if err != nil {
		return err
	}
	if rec.ID, rec.Envelope, err = decodeLogEntry(v); err != nil {
		return err
	}
	rec.Result, err = get(txn, logKey(group, rec.Seq, logResult), what)
	if errors.Is(err, ErrNotFound) {
		rec.Result, err = nil, nil
	}
	return err
}

// LastSeq returns the sequence number of the last entry of the group's log,
// 0 if it has none.
func (s *Store) LastSeq(ctx context.Context, group []byte) (uint64, error) {
	if err := checkIDs(group); err != nil {
		return 0, err
	}
	var seq uint64
	err := s.view(ctx, func(txn *badger.Txn) error {
		v, err := get(txn, logNextKey(group), "")
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		seq, err = decodeU64(v)
		return err
	})
	return seq, err
}

// Outbox returns the group's outbox, in byte order of message IDs.
func (s *Store) Outbox(ctx context.Context, group []byte) ([]OutboxRecord, error) {
	if err := checkIDs(group); err != nil {
		return nil, err
	}
	var out []OutboxRecord
	p := outboxPrefix(group)
	err := s.view(ctx, func(txn *badger.Txn) error {
		return scan(ctx, txn, p, true, func(item *badger.Item) (bool, error) {
			v, err := valueOf(item)
			if err != nil {
				return false, err
			}
			out = append(out, OutboxRecord{MsgID: bytes.Clone(item.Key()[len(p):]), Record: v})
			return true, nil
		})
	})
	return out, err
}

// OutboxRecord returns the record of message msgID in the group's outbox.
func (s *Store) OutboxRecord(ctx context.Context, group, msgID []byte) ([]byte, error) {
	if err := checkIDs(group, msgID); err != nil {
		return nil, err
	}
	return s.getOne(ctx, outboxKey(group, msgID), fmt.Sprintf("outbox message %x of group %x", prefix(msgID), prefix(group)))
}

// Delivered reports whether the message msgID of the group is marked
// delivered (and not pruned since).
func (s *Store) Delivered(ctx context.Context, group, msgID []byte) (bool, error) {
	if err := checkIDs(group, msgID); err != nil {
		return false, err
	}
	var ok bool
	err := s.view(ctx, func(txn *badger.Txn) error {
		_, err := txn.Get(deliveredKey(group, msgID))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		ok = err == nil
		return err
	})
	return ok, err
}

// DeliveredIDs returns the message ids of the group marked delivered (and
// not pruned since), in no particular order.
func (s *Store) DeliveredIDs(ctx context.Context, group []byte) ([][]byte, error) {
	if err := checkIDs(group); err != nil {
		return nil, err
	}
	var out [][]byte
	p := key(groupPrefix(group), []byte{grpDelivered})
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			out = append(out, append([]byte(nil), it.Item().Key()[len(p):]...))
		}
		return nil
	})
	return out, err
}

// KeyPackage returns the private keys stored for a KeyPackage ref.
func (s *Store) KeyPackage(ctx context.Context, ref []byte) ([]byte, error) {
	if err := checkID("KeyPackage ref", ref); err != nil {
		return nil, err
	}
	return s.getOne(ctx, keyPackageKey(ref), fmt.Sprintf("KeyPackage %x", prefix(ref)))
}

// Setting returns the setting (scope, key).
func (s *Store) Setting(ctx context.Context, scope, key string) ([]byte, error) {
	if err := checkName("setting scope", scope, maxIDLen); err != nil {
		return nil, err
	}
	if err := checkName("setting key", key, maxNameLen); err != nil {
		return nil, err
	}
	return s.getOne(ctx, settingKey(scope, key), "setting "+scope+"/"+key)
}

// Settings returns every setting of a scope, by key.
func (s *Store) Settings(ctx context.Context, scope string) (map[string][]byte, error) {
	if err := checkName("setting scope", scope, maxIDLen); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	p := key([]byte{nsSetting}, lp([]byte(scope)))
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			v, err := valueOf(it.Item())
			if err != nil {
				return err
			}
			out[string(it.Item().Key()[len(p):])] = v
		}
		return nil
	})
	return out, err
}

// Identity returns the identity value stored under name.
func (s *Store) Identity(ctx context.Context, name string) ([]byte, error) {
	if err := checkName("identity name", name, maxNameLen); err != nil {
		return nil, err
	}
	return s.getOne(ctx, identityKey(name), "identity "+name)
}

// PutPeer stores (or replaces) the record of a peer in the peer book,
// durably.
func (s *Store) PutPeer(ctx context.Context, id string, record []byte) error {
	if err := checkName("peer ID", id, maxNameLen); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.space.check(int64(len(record)), 0); err != nil {
		return fmt.Errorf("store: write peer: %w", err)
	}
	err := s.db.Update(func(txn *badger.Txn) error { return set(txn, peerKey(id), record) })
	if err != nil {
		return fmt.Errorf("store: write peer: %w", err)
	}
	return nil
}

// Peers returns the whole peer book.
func (s *Store) Peers(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(ctx, func(txn *badger.Txn) error {
		return scan(ctx, txn, []byte{nsPeer}, true, func(item *badger.Item) (bool, error) {
			v, err := valueOf(item)
			if err != nil {
				return false, err
			}
			out[string(item.Key()[1:])] = v
			return true, nil
		})
	})
	return out, err
}

func checkIDs(group []byte, ids ...[]byte) error {
	if err := checkID("group ID", group); err != nil {
		return err
	}
	for _, id := range ids {
		if err := checkID("ID", id); err != nil {
			return err
		}
	}
	return nil
}
