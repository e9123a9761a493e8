package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/store"
)

// Content types of Parley application messages.
const (
	contentText uint16 = 1 // UTF-8 text
	// contentFileAnnounce is a fileAnnouncement (filewire.go): the file
	// itself travels over direct streams.
	contentFileAnnounce uint16 = 4
	// contentJoinRequest and contentJoinDecision share a join request
	// with the members and tell them it was decided (joinwire.go,
	// joinshare.go). They are not shown.
	contentJoinRequest  uint16 = 5
	contentJoinDecision uint16 = 6
)

// Content types of the retired file format, in which files travelled
// through the group: a JSON header (2), then chunks (3). They are
// ignored.
const (
	contentRetiredFile      uint16 = 2
	contentRetiredFileChunk uint16 = 3
)

// maxText bounds a text message.
const maxText = 64 << 10

func (g *groupRunner) showable(ct uint16) bool { return ct == contentText || ct == contentFileAnnounce }

// record is the history record of a delivered message.
func (g *groupRunner) record(d ordering.Delivery) api.Message {
	p, name, _ := ParseMemberID(d.Sender)
	m := api.Message{
		ID: hex.EncodeToString(d.ID[:]), Group: g.hexID, Sender: name, Epoch: d.Epoch,
		ReceivedAt: time.Now().UTC(), SentAt: d.SentAt, Own: p == g.n.id.PeerID,
	}
	if pub, err := p.ExtractPublicKey(); err == nil {
		if raw, err := pub.Raw(); err == nil {
			m.SenderFingerprint = Fingerprint(raw)
		}
	}
	switch d.ContentType {
	case contentText:
		m.Text = string(d.Body)
	case contentFileAnnounce:
		if a, err := decodeAnnouncement(d.Body); err == nil {
			m.File = &api.FileInfo{Name: a.name, Size: a.size, SHA256: hex.EncodeToString(a.sha256[:])}
		}
	}
	return m
}

// delivered acts on a delivered message (after it was saved).
func (g *groupRunner) delivered(d ordering.Delivery) {
	switch d.ContentType {
	case contentText, contentFileAnnounce:
		m := g.record(d)
		m.Final = d.Final
		m.Seq = g.seqs[d.ID]
		g.n.observeLatency(m.SentAt)
		g.n.broadcast(api.Event{Type: api.EventMessage, Group: g.hexID, Message: &m})
		if d.ContentType == contentFileAnnounce {
			g.announced(d)
		}
	case contentRetiredFile, contentRetiredFileChunk:
		g.n.log.Info("a file message of the retired format ignored", "group", g.hexID[:8], "from", d.Sender, "msg_type", d.ContentType)
	}
}

// Send implements api.Backend.
func (n *Node) Send(ctx context.Context, ref, text string) (string, error) {
	if text == "" || len(text) > maxText || !utf8.ValidString(text) {
		return "", fmt.Errorf("%w: a message is 1 byte to 64 KiB of UTF-8 text", api.ErrInvalid)
	}
	g, err := n.activeGroup(ref)
	if err != nil {
		return "", err
	}
	var id string
	err = g.do(ctx, func() error {
		id, err = g.send(contentText, []byte(text), nil)
		return err
	})
	return id, err
}

// send sends an application message and records it in the history (text
// and file headers), with extra changes of the caller (given the message's
// id), in the same transaction. In a round the write, the publication and
// the event wait for the end of the round (do returns after them).
func (g *groupRunner) send(ct uint16, body []byte, extra func(b *store.Batch, id string)) (string, error) {
	out := g.loop.Handle(time.Now(), ordering.SendMessage{ContentType: ct, Body: body})
	if out.Sent == (ordering.MessageID{}) {
		for _, no := range out.Notices {
			if no.Err != nil {
				return "", fmt.Errorf("%w: %v", api.ErrNotMember, no.Err)
			}
		}
		return "", fmt.Errorf("%w: the message was not sent", api.ErrNotMember)
	}
	id := out.Sent
	hexID := hex.EncodeToString(id[:])
	var rec []byte
	var m api.Message
	if g.showable(ct) {
		m = g.record(ordering.Delivery{ID: id, Sender: g.loop.Self(), ContentType: ct, Body: body, Epoch: g.loop.Tip().Number})
		m.SentAt = out.SentAt
		rec, _ = json.Marshal(m)
	}
	final := slices.ContainsFunc(out.Finalized, func(f ordering.Finalization) bool { return f.ID == id }) // its epoch was final already
	m.Final = final
	ok := g.applyLater(out, func(b *store.Batch) {
		if rec != nil {
			g.appendHistory(b, id, rec, final)
		}
		if extra != nil {
			extra(b, hexID)
		}
	}, func() {
		if rec != nil {
			m.Seq = g.seqs[id]
			g.n.broadcast(api.Event{Type: api.EventMessage, Group: g.hexID, Message: &m})
		}
	})
	if !ok {
		return "", errStopped
	}
	return hexID, nil
}

// Read implements api.Backend.
func (n *Node) Read(ctx context.Context, ref string, after uint64, limit int) ([]api.Message, error) {
	g, err := n.findGroup(ref)
	if err != nil {
		return nil, err
	}
	recs, err := n.st.Log(ctx, historyGroup(g.gid), after+1, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Message, 0, len(recs))
	for _, r := range recs {
		var m api.Message
		if err := json.Unmarshal(r.Envelope, &m); err != nil {
			continue
		}
		m.Seq = r.Seq
		final, epoch, ok := readResult(r.Result)
		m.Final = final
		if ok {
			m.Epoch = epoch
		}
		if m.File != nil {
			g.fileState(&m)
		}
		out = append(out, m)
	}
	return out, nil
}

// Identity implements api.Backend.
func (n *Node) Identity(context.Context) (api.Identity, error) {
	var addrs []string
	for _, a := range n.p2p.Addrs() {
		addrs = append(addrs, a.String())
	}
	return api.Identity{Name: n.id.Name, PeerID: n.id.PeerID.String(), Addrs: addrs, Fingerprint: n.id.Fingerprint()}, nil
}

// Status implements api.Backend.
func (n *Node) Status(context.Context) (api.Status, error) {
	s := api.Status{PeerID: n.id.PeerID.String(), Peers: len(n.p2p.Peers())}
	if lsm, vlog, other, err := n.st.Size(); err == nil {
		s.StoreBytes = lsm + vlog + other
	}
	s.Goroutines, s.HeapBytes = runtimeFigures()
	s.Reachability = n.p2p.Reachability().Host
	for _, a := range n.p2p.Addrs() {
		if str := a.String(); strings.Contains(str, "/p2p-circuit") && !strings.HasPrefix(str, "/p2p-circuit") {
			s.RelayAddrs = append(s.RelayAddrs, str)
		}
	}
	n.mu.Lock()
	for _, g := range n.groups {
		gs := g.status()
		gs.State, gs.Reason, gs.Todo = api.Health(gs)
		s.Groups = append(s.Groups, gs)
	}
	n.mu.Unlock()
	return s, nil
}

// subscriber is one event stream.
type subscriber struct {
	group string
	ch    chan api.Event
}

// Subscribe implements api.Backend.
func (n *Node) Subscribe(ctx context.Context, ref string) (<-chan api.Event, error) {
	s := &subscriber{ch: make(chan api.Event, 4096)}
	if ref != "" {
		g, err := n.findGroup(ref)
		if err != nil {
			return nil, err
		}
		s.group = g.hexID
	}
	n.mu.Lock()
	n.subs[s] = struct{}{}
	n.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-n.ctx.Done():
		}
		n.mu.Lock()
		delete(n.subs, s)
		close(s.ch)
		n.mu.Unlock()
	}()
	return s.ch, nil
}

// broadcast sends an event to the subscribers; a subscriber too slow to
// take it misses it (its buffer holds 4096).
func (n *Node) broadcast(ev api.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs {
		if s.group != "" && s.group != ev.Group {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			n.log.Warn("event subscriber too slow; an event was dropped", "type", ev.Type)
		}
	}
}

// addedBy returns who added whom in the group, as far as this node saw.
func (g *groupRunner) addedBy() map[string]string {
	out := map[string]string{}
	recs, err := g.n.st.Settings(g.n.ctx, scopeAddedBy)
	if err != nil {
		return out
	}
	prefix := g.hexID + "|"
	for k, v := range recs {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = string(v)
		}
	}
	return out
}

const scopeAddedBy = "addedby"

// noteAddedBy records that by added the member with the identity.
func (g *groupRunner) noteAddedBy(identity, by string) {
	if by == "" {
		return
	}
	b := g.n.st.NewBatch()
	b.PutSetting(scopeAddedBy, g.hexID+"|"+identity, []byte(by))
	if err := g.n.st.Write(context.Background(), b); err != nil {
		g.n.log.Warn("recording who added a member", "err", err)
	}
}

// kpMessage encodes a bundle's KeyPackage as an MLSMessage.
func kpMessage(kp *group.KeyPackageBundle) []byte {
	return codec.MustMarshal(wire.NewMLSMessage(kp.KeyPackage))
}

func wireUnmarshal(data []byte, v codec.Unmarshaler) error { return codec.Unmarshal(data, v) }
