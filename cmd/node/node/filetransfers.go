package node

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A group's file transfers: the files arriving (filefetch.go), the
// requests to each member, what was served (fileserve.go).
// fileTransfers are a group's files arriving, and what it served of its
// own.
type fileTransfers struct {
	g      *groupRunner
	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[string]*fetch       // by hex file id
	served map[string]*servedState // own files, by hex file id
	// slots bound the requests under way to each member, whatever the
	// files: inflight (of p2p's four per peer, the rest are catch-up's).
	slots map[peer.ID]chan struct{}
	// serving bounds the requests served at once (maxServing).
	serving chan struct{}
}

func newFileTransfers(g *groupRunner) *fileTransfers {
	return &fileTransfers{g: g, active: map[string]*fetch{}, served: map[string]*servedState{},
		slots: map[peer.ID]chan struct{}{}, serving: make(chan struct{}, maxServing)}
}

// acquire takes a request slot for p; release gives it back.
func (t *fileTransfers) acquire(ctx context.Context, p peer.ID) error {
	t.mu.Lock()
	slot := t.slots[p]
	if slot == nil {
		slot = make(chan struct{}, inflight)
		t.slots[p] = slot
	}
	t.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *fileTransfers) release(p peer.ID) {
	t.mu.Lock()
	slot := t.slots[p]
	t.mu.Unlock()
	<-slot
}

// resume restarts, when the group starts, the fetches of files arriving,
// and finishes moving a completed file a crash left as its .part. It runs
// before the group's goroutine.
func (t *fileTransfers) resume() {
	g := t.g
	g.dropRetiredTransfers()
	recs, err := g.n.st.Settings(g.n.ctx, scopeFile)
	if err != nil {
		g.n.log.Error("reading the files of the group; transfers not resumed", "group", g.hexID[:8], "err", err)
		return
	}
	for k, v := range recs {
		id, ok := strings.CutPrefix(k, g.hexID+"|")
		if !ok {
			continue
		}
		rec, err := unmarshalFileRecord(v)
		if err != nil {
			g.n.log.Warn("a file record that does not read; left", "group", g.hexID[:8], "file", id, "err", err)
			continue
		}
		switch rec.State {
		case fileReceiving:
			t.fetch(id, rec)
		case fileDone:
			if _, err := os.Stat(rec.Path); errors.Is(err, os.ErrNotExist) {
				part := t.partPath(id)
				if err := os.Rename(part, rec.Path); err == nil {
					g.n.log.Info("file received (moved into place after a restart)", "group", g.hexID[:8], "file", rec.Path)
				}
			}
		}
	}
}

// fetch starts fetching a file unless it is under way.
func (t *fileTransfers) fetch(id string, rec *fileRecord) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return
	}
	if len(rec.Key) != 32 || rec.Chunk < minChunkSize || rec.Chunk > maxChunkSize || rec.Size < 0 || rec.Size > maxFileSize {
		t.g.n.log.Warn("a file record that is not whole; not fetched", "group", t.g.hexID[:8], "file", id)
		return
	}
	aead, err := newChunkAEAD([32]byte(rec.Key), t.g.gid, [16]byte(raw))
	if err != nil {
		t.g.n.log.Warn("a file record without a usable key; not fetched", "group", t.g.hexID[:8], "file", id)
		return
	}
	sum, err := hex.DecodeString(rec.SHA256)
	if err != nil || len(sum) != 32 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active[id] != nil || t.g.ctx.Err() != nil {
		return
	}
	f := &fetch{t: t, id: id, fileID: [16]byte(raw), rec: *rec, sum: [32]byte(sum), aead: aead, chunks: rec.chunks(),
		have: rec.Have, landed: make(chan struct{}, 1), bufs: make(chan []byte, inflight*(queuedFrames+2))}
	if len(f.have) != len(newBitset(f.chunks)) {
		f.have = newBitset(f.chunks)
	}
	f.claimed = newBitset(f.chunks)
	f.held = f.have.count()
	f.savedHeld = f.held
	t.active[id] = f
	t.wg.Go(func() {
		f.run(t.g.ctx)
		t.mu.Lock()
		delete(t.active, id)
		t.mu.Unlock()
	})
}

// wait waits for the fetches, which end with the group's context.
func (t *fileTransfers) wait() { t.wg.Wait() }

// received returns the bytes of a file arriving that are in.
func (t *fileTransfers) received(id string) (int64, bool) {
	t.mu.Lock()
	f := t.active[id]
	t.mu.Unlock()
	if f == nil {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return min(int64(f.held)*int64(f.rec.Chunk), f.rec.Size), true
}

func (t *fileTransfers) filesDir() string {
	return filepath.Join(t.g.n.files, t.g.hexID[:16])
}

// partPath is where a file arriving is written.
func (t *fileTransfers) partPath(id string) string {
	return filepath.Join(t.filesDir(), ".part-"+id)
}
