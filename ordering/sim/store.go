package sim

import (
	"crypto/sha256"
	"errors"

	"github.com/parley-p2p/parley/ordering"
)

// memStore is what a simulated member has persisted: it survives crashes,
// and each Changes is applied atomically.
type memStore struct {
	meta      []byte
	epochs    map[ordering.EpochID]ordering.SavedEpoch
	log       []ordering.LogEntry
	outbox    map[ordering.MessageID][]byte
	delivered map[ordering.MessageID]bool
	bytes     int
	// byHash indexes log entries by the SHA-256 of the envelope (the
	// ordering.Archive key).
	byHash map[[32]byte][]byte
	reads  int // archive reads
	// discard drops snapshots (see Config.DiscardSnapshots).
	discard bool
}

func newMemStore() *memStore {
	return &memStore{
		epochs:    map[ordering.EpochID]ordering.SavedEpoch{},
		outbox:    map[ordering.MessageID][]byte{},
		delivered: map[ordering.MessageID]bool{},
		byHash:    map[[32]byte][]byte{},
	}
}

var errNotSaved = errors.New("sim: not saved")

// Envelope implements ordering.Archive.
func (m *memStore) Envelope(hash [32]byte) ([]byte, error) {
	m.reads++
	if e, ok := m.byHash[hash]; ok {
		return e, nil
	}
	return nil, errNotSaved
}

// OutboxRecord implements ordering.Archive.
func (m *memStore) OutboxRecord(id ordering.MessageID) ([]byte, error) {
	m.reads++
	if r, ok := m.outbox[id]; ok {
		return r, nil
	}
	return nil, errNotSaved
}

func (m *memStore) apply(c *ordering.Changes) {
	for _, e := range c.PutEpochs {
		m.bytes += len(e.Snapshot)
		if m.discard {
			e.Snapshot = nil
		}
		m.epochs[e.ID] = e
	}
	for _, id := range c.DeleteEpochs {
		delete(m.epochs, id)
		kept := m.log[:0]
		for _, l := range m.log {
			if l.Epoch != id {
				kept = append(kept, l)
			} else {
				delete(m.byHash, sha256.Sum256(l.Envelope))
			}
		}
		m.log = kept
	}
	if c.Meta != nil {
		m.meta = c.Meta
	}
	m.log = append(m.log, c.Log...)
	for _, l := range c.Log {
		m.byHash[sha256.Sum256(l.Envelope)] = l.Envelope
	}
	for _, o := range c.Outbox {
		m.outbox[o.ID] = o.Record
	}
	for _, id := range c.OutboxDone {
		delete(m.outbox, id)
	}
	for _, id := range c.Delivered {
		m.delivered[id] = true
	}
}

func (m *memStore) saved() *ordering.Saved {
	s := &ordering.Saved{Meta: m.meta}
	for _, e := range m.epochs {
		s.Epochs = append(s.Epochs, e)
	}
	s.Log = append(s.Log, m.log...)
	for id, r := range m.outbox {
		s.Outbox = append(s.Outbox, ordering.OutboxEntry{ID: id, Record: r})
	}
	for id := range m.delivered {
		s.Delivered = append(s.Delivered, id)
	}
	return s
}
