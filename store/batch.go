package store

import "fmt"

// LogEntry is one envelope of the received-message log of a group.
type LogEntry struct {
	// ID identifies the envelope (its hash); unique within a group.
	ID []byte
	// Envelope holds the bytes as received.
	Envelope []byte
	// Result is the outcome of processing it (opaque to the store); it may
	// be set later with SetLogResult.
	Result []byte
}

// LogRecord is a LogEntry with the sequence number the store gave it.
type LogRecord struct {
	Seq uint64
	LogEntry
}

// EpochInfo names one retained epoch snapshot of a group.
type EpochInfo struct {
	ID    []byte
	Epoch uint64
}

// OutboxRecord is one message of a group's outbox.
type OutboxRecord struct {
	MsgID  []byte
	Record []byte
}

// Appended is the handle AppendLog returns; after a successful Write it
// holds the sequence number the entry was given.
type Appended struct{ seq uint64 }

// Seq returns the sequence number of the appended entry, or 0 if the Write
// that carried it has not succeeded (yet).
func (a *Appended) Seq() uint64 { return a.seq }

type opKind uint8

const (
	opPutEpoch opKind = iota + 1
	opDeleteEpoch
	opSetHead
	opAppendLog
	opSetLogResult
	opPutOutbox
	opDeleteOutbox
	opMarkDelivered
	opPruneDelivered
	opPutKeyPackage
	opDeleteKeyPackage
	opPutSetting
	opDeleteSetting
	opPutIdentity
	opDeleteGroup
	opDeleteLog
)

type op struct {
	kind   opKind
	group  []byte
	id     []byte // epoch ID, log entry ID, message ID or KeyPackage ref
	num    uint64 // epoch number or log sequence number
	key    []byte // fully built key for the simple set/delete ops
	value  []byte
	entry  LogEntry
	result *Appended
}

// Batch records state changes; nothing happens until Store.Write commits
// it. Ops apply in the order they were recorded, and every op of every batch
// given to one Write commits in one transaction, or none does.
//
// A Batch keeps the slices it is given: do not modify them until Write
// returns. The first invalid argument makes the batch fail as a whole when
// written. A Batch is not safe for concurrent use; it may be written again
// after a failed Write (AppendLog handles are reset on each attempt).
type Batch struct {
	ops []op
	err error
}

// NewBatch returns an empty batch. The zero Batch is also ready to use.
func (s *Store) NewBatch() *Batch { return &Batch{} }

// Len returns the number of ops recorded.
func (b *Batch) Len() int { return len(b.ops) }

func (b *Batch) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *Batch) checkGroup(group []byte) bool {
	if err := checkID("group ID", group); err != nil {
		b.fail(err)
		return false
	}
	return true
}

func (b *Batch) checkID(what string, id []byte) bool {
	if err := checkID(what, id); err != nil {
		b.fail(err)
		return false
	}
	return true
}

// PutEpoch stores the snapshot of an epoch of a group, replacing any
// snapshot stored under the same epoch ID.
func (b *Batch) PutEpoch(group, epochID []byte, epoch uint64, snapshot []byte) {
	if b.checkGroup(group) && b.checkID("epoch ID", epochID) {
		b.ops = append(b.ops, op{kind: opPutEpoch, group: group, id: epochID, num: epoch, value: snapshot})
	}
}

// DeleteEpoch deletes the snapshot of an epoch (its secrets with it). It is
// not an error if the epoch is not stored.
func (b *Batch) DeleteEpoch(group, epochID []byte) {
	if b.checkGroup(group) && b.checkID("epoch ID", epochID) {
		b.ops = append(b.ops, op{kind: opDeleteEpoch, group: group, id: epochID})
	}
}

// SetHead stores the group's head: the ordering state (canonical tip,
// finality, branches) as an opaque blob.
func (b *Batch) SetHead(group, head []byte) {
	if b.checkGroup(group) {
		b.ops = append(b.ops, op{kind: opSetHead, group: group, value: head})
	}
}

// AppendLog appends an entry to the group's received-message log with the
// next sequence number (the first is 1). If the group's log already holds
// an entry with the same ID, or the same Write appends the ID twice, the
// whole Write fails with a *DuplicateError (errors.Is ErrDuplicate) and
// nothing is written: a replayed envelope is never logged twice.
func (b *Batch) AppendLog(group []byte, e LogEntry) *Appended {
	a := &Appended{}
	if b.checkGroup(group) && b.checkID("log entry ID", e.ID) {
		b.ops = append(b.ops, op{kind: opAppendLog, group: group, entry: e, result: a})
	}
	return a
}

// SetLogResult replaces the result of the log entry with sequence number
// seq. The Write fails with ErrNotFound if there is no such entry.
func (b *Batch) SetLogResult(group []byte, seq uint64, result []byte) {
	if !b.checkGroup(group) {
		return
	}
	if seq == 0 {
		b.fail(fmt.Errorf("%w: log sequence number 0", ErrInvalidArgument))
		return
	}
	b.ops = append(b.ops, op{kind: opSetLogResult, group: group, num: seq, value: result})
}

// DeleteLog deletes the log entry with sequence number seq, its result and
// its ID (which may then be appended again). It is not an error if there is
// no such entry. Use it to drop the messages of an expired epoch.
func (b *Batch) DeleteLog(group []byte, seq uint64) {
	if b.checkGroup(group) {
		b.ops = append(b.ops, op{kind: opDeleteLog, group: group, num: seq})
	}
}

// PutOutbox stores (or replaces) a message of the group's outbox.
func (b *Batch) PutOutbox(group, msgID, record []byte) {
	if b.checkGroup(group) && b.checkID("message ID", msgID) {
		b.ops = append(b.ops, op{kind: opPutOutbox, group: group, id: msgID, value: record})
	}
}

// DeleteOutbox removes a message from the group's outbox.
func (b *Batch) DeleteOutbox(group, msgID []byte) {
	if b.checkGroup(group) && b.checkID("message ID", msgID) {
		b.ops = append(b.ops, op{kind: opDeleteOutbox, group: group, id: msgID})
	}
}

// MarkDelivered records that the message msgID was delivered to the
// application in the given epoch. Marking it again moves it to the new
// epoch. PruneDelivered forgets ids by epoch.
func (b *Batch) MarkDelivered(group, msgID []byte, epoch uint64) {
	if b.checkGroup(group) && b.checkID("message ID", msgID) {
		b.ops = append(b.ops, op{kind: opMarkDelivered, group: group, id: msgID, num: epoch})
	}
}

// PruneDelivered forgets the delivered message ids of the group that were
// marked in epochs below the given one. Call it in the same batch that
// deletes the epochs that fall out of retention: a message of such an epoch
// can no longer be decrypted, so it can no longer be delivered twice.
func (b *Batch) PruneDelivered(group []byte, below uint64) {
	if b.checkGroup(group) {
		b.ops = append(b.ops, op{kind: opPruneDelivered, group: group, num: below})
	}
}

// PutKeyPackage stores the private keys of a KeyPackage under its ref.
func (b *Batch) PutKeyPackage(ref, priv []byte) {
	if b.checkID("KeyPackage ref", ref) {
		b.ops = append(b.ops, op{kind: opPutKeyPackage, key: keyPackageKey(ref), value: priv})
	}
}

// DeleteKeyPackage deletes the private keys of a spent KeyPackage. Record it
// in the same batch as the join that spends it.
func (b *Batch) DeleteKeyPackage(ref []byte) {
	if b.checkID("KeyPackage ref", ref) {
		b.ops = append(b.ops, op{kind: opDeleteKeyPackage, key: keyPackageKey(ref)})
	}
}

// PutSetting stores a setting under (scope, key).
func (b *Batch) PutSetting(scope, key string, value []byte) {
	if b.checkSetting(scope, key) {
		b.ops = append(b.ops, op{kind: opPutSetting, key: settingKey(scope, key), value: value})
	}
}

// DeleteSetting deletes the setting (scope, key).
func (b *Batch) DeleteSetting(scope, key string) {
	if b.checkSetting(scope, key) {
		b.ops = append(b.ops, op{kind: opDeleteSetting, key: settingKey(scope, key)})
	}
}

func (b *Batch) checkSetting(scope, key string) bool {
	if err := checkName("setting scope", scope, maxIDLen); err != nil {
		b.fail(err)
		return false
	}
	if err := checkName("setting key", key, maxNameLen); err != nil {
		b.fail(err)
		return false
	}
	return true
}

// PutIdentity stores a piece of the node identity (the libp2p key, the MLS
// signature key...) under a name.
func (b *Batch) PutIdentity(name string, value []byte) {
	if err := checkName("identity name", name, maxNameLen); err != nil {
		b.fail(err)
		return
	}
	b.ops = append(b.ops, op{kind: opPutIdentity, key: identityKey(name), value: value})
}

// DeleteGroup deletes everything stored for the group: epochs, head, log,
// outbox and delivered ids. Settings stay: their scopes are the caller's.
// Later ops of the same Write may recreate the group from scratch.
func (b *Batch) DeleteGroup(group []byte) {
	if b.checkGroup(group) {
		b.ops = append(b.ops, op{kind: opDeleteGroup, group: group})
	}
}
