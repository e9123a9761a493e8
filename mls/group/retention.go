package group

import (
	"fmt"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/wire"
)

// Retire strips a past epoch down to what reading late application
// messages needs (its message keys, sender data secret, tree and context)
// and deletes the rest of its secrets: init secret, exporter, external,
// confirmation and membership keys. A retired State can decrypt but not
// send, commit, or process handshake messages.
func (s *State) Retire() {
	e := s.secrets
	for _, v := range [][]byte{e.InitSecret, e.ExporterSecret, e.ExternalSecret, e.ConfirmationKey, e.MembershipKey, e.ResumptionPSK, e.JoinerSecret, e.WelcomeSecret} {
		clear(v)
	}
	e.InitSecret, e.ExporterSecret, e.ExternalSecret, e.ConfirmationKey, e.MembershipKey, e.ResumptionPSK = nil, nil, nil, nil, nil, nil
	s.priv = nil // shared with later epochs; they own it now
	s.retired = true
	for _, p := range s.proposals {
		if p.updateKey != nil {
			p.updateKey.Destroy()
		}
	}
	s.proposals = nil
}

// Retired reports whether Retire was called.
func (s *State) Retired() bool { return s.retired }

// History keeps retired past epochs for late application messages, within
// bounds on their number and age; expired epochs have their secrets
// deleted.
type History struct {
	// MaxEpochs is how many past epochs are kept (0 keeps none).
	MaxEpochs int
	// MaxAge is how long a past epoch is kept after it was replaced (0
	// means no age limit).
	MaxAge  time.Duration
	entries []historyEntry
}

type historyEntry struct {
	state *State
	at    time.Time
}

// Add retires s, replaced at now, keeps it, and expires old epochs.
func (h *History) Add(s *State, now time.Time) {
	s.Retire()
	h.entries = append(h.entries, historyEntry{s, now})
	h.Expire(now)
}

// Expire deletes the epochs beyond the bounds.
func (h *History) Expire(now time.Time) {
	keep := h.entries[:0]
	n := len(h.entries)
	for i, e := range h.entries {
		tooMany := n-i > h.MaxEpochs
		tooOld := h.MaxAge > 0 && now.Sub(e.at) > h.MaxAge
		if tooMany || tooOld {
			e.state.Destroy()
			continue
		}
		keep = append(keep, e)
	}
	clear(h.entries[len(keep):])
	h.entries = keep
}

// Find returns the kept State of an epoch.
func (h *History) Find(epoch uint64) *State {
	for _, e := range h.entries {
		if e.state.Epoch() == epoch {
			return e.state
		}
	}
	return nil
}

// Len returns the number of kept epochs.
func (h *History) Len() int { return len(h.entries) }

// Group is a member's group for use with an ordering service (a delivery
// service, or Parley's ordering layer deciding which commit wins): the
// current epoch, a commit of its own awaiting the verdict, and a History of
// past epochs for late application messages.
type Group struct {
	cur     *State
	pending *StagedCommit
	History History
	// Now is the clock of the history; nil means time.Now.
	Now func() time.Time
}

// NewGroup wraps a State.
func NewGroup(s *State, h History) *Group { return &Group{cur: s, History: h} }

// State returns the current epoch.
func (g *Group) State() *State { return g.cur }

func (g *Group) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Commit creates a commit and keeps it pending until MergePending or
// DiscardPending.
func (g *Group) Commit(opts CommitOptions) (*StagedCommit, error) {
	if g.pending != nil {
		return nil, fmt.Errorf("%w: a commit is already pending", ErrInvalidCommit)
	}
	sc, err := g.cur.Commit(opts)
	if err != nil {
		return nil, err
	}
	g.pending = sc
	return sc, nil
}

// Pending returns the pending own commit, if any.
func (g *Group) Pending() *StagedCommit { return g.pending }

// MergePending adopts the pending own commit.
func (g *Group) MergePending() error {
	if g.pending == nil {
		return fmt.Errorf("%w: no pending commit", ErrInvalidCommit)
	}
	sc := g.pending
	g.pending = nil
	return g.Merge(sc)
}

// DiscardPending drops the pending own commit.
func (g *Group) DiscardPending() {
	if g.pending != nil {
		g.pending.Discard()
		g.pending = nil
	}
}

// Merge adopts a staged commit made on the current epoch.
func (g *Group) Merge(sc *StagedCommit) error {
	if sc.State == nil {
		return ErrNotMember
	}
	if sc.State.Epoch() != g.cur.Epoch()+1 || string(sc.State.GroupID()) != string(g.cur.GroupID()) {
		return fmt.Errorf("%w: commit is not for the current epoch", ErrWrongEpoch)
	}
	if g.pending != nil && g.pending != sc {
		g.pending.Discard()
		g.pending = nil
	}
	old := g.cur
	g.cur = sc.State
	g.History.Add(old, g.now())
	return nil
}

// Process processes a message of the current epoch, or an application
// message of a kept past epoch. A commit is returned staged, not merged.
func (g *Group) Process(m *wire.MLSMessage) (*Processed, error) {
	epoch, ok := messageEpoch(m)
	if ok && epoch < g.cur.Epoch() && string(messageGroup(m)) == string(g.cur.GroupID()) {
		old := g.History.Find(epoch)
		if old == nil {
			return nil, fmt.Errorf("%w: epoch %d is no longer kept", ErrWrongEpoch, epoch)
		}
		if m.WireFormat != wire.WireFormatPrivateMessage || m.PrivateMessage.ContentType != wire.ContentApplication {
			return nil, fmt.Errorf("%w: only application messages of past epochs are read", ErrWrongEpoch)
		}
		return old.Process(m)
	}
	return g.cur.Process(m)
}

// ProcessBytes decodes and processes a message.
func (g *Group) ProcessBytes(data []byte) (*Processed, error) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("group: decoding message: %w", err)
	}
	return g.Process(&m)
}

func messageEpoch(m *wire.MLSMessage) (uint64, bool) {
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		return m.PublicMessage.Content.Epoch, true
	case wire.WireFormatPrivateMessage:
		return m.PrivateMessage.Epoch, true
	}
	return 0, false
}

func messageGroup(m *wire.MLSMessage) []byte {
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		return m.PublicMessage.Content.GroupID
	case wire.WireFormatPrivateMessage:
		return m.PrivateMessage.GroupID
	}
	return nil
}
