package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/cmd/node/api"
)

// The receiving side of file transfer: one goroutine per file arriving
// (see files.go).

const (
	// A request asks for about windowTime of chunks at the rate the last
	// ones came (from firstWindow chunks up to maxWindow), so that one
	// answer takes well under p2p's 30 s per request on a slow path and
	// the stream, not the round trips, bounds a fast one. inflight are
	// the requests in flight to one member: two leave room under p2p's
	// four requests per peer for catch-up and the rest.
	windowTime  = 3 * time.Second
	firstWindow = 4
	inflight    = 2
	// saveEvery is how often a file's progress is made durable (the
	// .part file synced, then the chunks it holds recorded): a crash
	// costs at most the chunks of the last interval.
	saveEvery = time.Second
	// eventEvery spaces the progress events of a file.
	eventEvery = 200 * time.Millisecond
	// retryMax bounds the wait before a member that failed is asked
	// again (a sender that went offline, a member without the file yet).
	retryMax = 8 * time.Second
	// dialTimeout bounds a dial to a member to fetch from.
	dialTimeout = 5 * time.Second
)

// testHookBeforeFinish, if set, runs before a file arrived whole is
// checked and moved into place; testHookSaveRecord, before the progress
// of a file arriving is recorded: tests widen the window between the two.
var (
	testHookBeforeFinish atomic.Pointer[func()]
	testHookSaveRecord   atomic.Pointer[func(*fetch)]
)

// errFetchStopped ends a fetch for good: this member left the group, or
// the group stopped.
var errFetchStopped = errors.New("node: file fetch stopped")

// fetch is one file arriving.
type fetch struct {
	t      *fileTransfers
	id     string
	fileID [16]byte
	rec    fileRecord // as announced; the chunks held are in have
	sum    [32]byte
	aead   *chunkAEAD
	chunks int
	part   *os.File

	// landed wakes the hasher when a chunk was written.
	landed chan struct{}
	// bufs are the chunk buffers kept (getBuf).
	bufs chan []byte

	mu sync.Mutex
	// have are the chunks written to part, held their count, claimed
	// those asked for by a request under way.
	have, claimed bitset
	held          int
	// savedHeld is held at the last save (the chunks the record has).
	savedHeld int
	evented   time.Time
	// rate is the bytes per second the last answer came at (0 before
	// the first).
	rate float64
}

// source is a member to fetch from.
type source struct {
	peer     peer.ID
	identity string
}

// retry is when a member that failed is asked again.
type retry struct {
	fails int
	next  time.Time
}

func (f *fetch) run(ctx context.Context) {
	log := f.t.g.n.log.With("group", f.t.g.hexID[:8], "file", f.id[:8])
	if err := f.open(); err != nil {
		log.Error("cannot write a file arriving; not fetched until the node restarts", "err", err)
		return
	}
	defer f.part.Close()
	// A node that stops records what it holds; a crash loses at most
	// saveEvery of chunks.
	defer func() {
		if !f.complete() {
			if err := f.save(); err != nil {
				log.Warn("recording a file's progress at a stop", "err", err)
			}
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	// The SHA-256 follows the chunks in order as they land, reading them
	// back from the .part file, beside the requests (a second core); the
	// progress is made durable beside them too: a sync of the .part file
	// must not stop the stream.
	hashed := make(chan hashResult, 1)
	go func() { hashed <- f.hashChunks(ctx) }()
	saveCtx, endSaveLoop := context.WithCancel(ctx)
	saving := make(chan struct{})
	go func() {
		defer close(saving)
		f.saveLoop(saveCtx, log)
	}()
	stopSaving := func() {
		endSaveLoop()
		<-saving
	}
	defer func() {
		cancel()
		stopSaving()
	}()
	retries := map[peer.ID]*retry{}
	for ctx.Err() == nil {
		if f.complete() {
			select {
			case h := <-hashed:
				// The record finish writes is the last: a save of the
				// progress under way would write it back to
				// "receiving", with no path, after it.
				stopSaving()
				if hook := testHookBeforeFinish.Load(); hook != nil {
					(*hook)()
				}
				f.finish(log, h)
			case <-ctx.Done():
			}
			return
		}
		sources := f.sources()
		for _, s := range sources {
			if r := retries[s.peer]; r != nil && time.Now().Before(r.next) {
				continue
			}
			before := f.heldCount()
			err := f.fetchFrom(ctx, s)
			switch {
			case err == nil:
				delete(retries, s.peer)
			case errors.Is(err, errFetchStopped), ctx.Err() != nil:
				return
			case errors.Is(err, errLocalWrite):
				log.Error("cannot write a file arriving; not fetched until the node restarts", "err", err)
				return
			default:
				r := retries[s.peer]
				if r == nil {
					r = &retry{}
					retries[s.peer] = r
				}
				if f.heldCount() > before {
					r.fails = 0 // it served some: it may be back soon
				}
				r.next = time.Now().Add(min(retryMax, 250*time.Millisecond<<r.fails))
				r.fails = min(r.fails+1, 8)
				log.Debug("file chunks not fetched", "peer", s.peer, "err", err)
			}
			if f.complete() {
				break
			}
		}
		if f.complete() {
			continue
		}
		// Nobody to ask now: wait for the first retry (or, if this node
		// knows no member yet, a moment).
		wait := retryMax
		if len(sources) == 0 {
			wait = time.Second
		}
		for _, s := range sources {
			if r := retries[s.peer]; r != nil {
				wait = min(wait, time.Until(r.next))
			} else {
				wait = 0
			}
		}
		timer := time.NewTimer(max(wait, 100*time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// errLocalWrite is a failure to write this member's own disk.
var errLocalWrite = errors.New("node: writing a file arriving")

// open opens (or makes) the .part file. A .part file that is not the
// file's size was lost or cut short: whatever the record says, it holds
// nothing.
func (f *fetch) open() error {
	if err := os.MkdirAll(f.t.filesDir(), 0o700); err != nil {
		return err
	}
	part, err := os.OpenFile(f.t.partPath(f.id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := part.Stat()
	if err != nil {
		part.Close()
		return err
	}
	if fi.Size() != f.rec.Size {
		if f.have.count() > 0 {
			f.t.g.n.log.Warn("the .part file of a file arriving is not the file's size; fetching it again",
				"group", f.t.g.hexID[:8], "file", f.id[:8], "size", fi.Size())
		}
		f.have = newBitset(f.chunks)
		if err := part.Truncate(f.rec.Size); err != nil {
			part.Close()
			return err
		}
	}
	f.part = part
	f.mu.Lock()
	if held := f.have.count(); held != f.held {
		f.held = held
		f.savedHeld = -1 // the record claims chunks that are not there
	}
	f.mu.Unlock()
	return nil
}

func (f *fetch) complete() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held == f.chunks
}

func (f *fetch) heldCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

// sources lists the members to ask: those this node is connected to
// first, and of them the sender first; then the others, the sender
// first.
func (f *fetch) sources() []source {
	g := f.t.g
	g.mu.Lock()
	var out []source
	for p, id := range g.members {
		if p != g.n.id.PeerID {
			out = append(out, source{p, id})
		}
	}
	g.mu.Unlock()
	rank := func(s source) int {
		r := 0
		if !g.n.p2p.Connected(s.peer) {
			r += 2
		}
		if s.identity != f.rec.Sender {
			r++
		}
		return r
	}
	slices.SortFunc(out, func(a, b source) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(string(a.peer), string(b.peer))
	})
	return out
}

// hashResult is the outcome of hashChunks.
type hashResult struct {
	sum [32]byte
	err error
}

// hashChunks hashes the file's chunks in order, each once it is held,
// reading it from the .part file.
func (f *fetch) hashChunks(ctx context.Context) hashResult {
	h := sha256.New()
	buf := make([]byte, f.rec.Chunk)
	for i := 0; i < f.chunks; {
		f.mu.Lock()
		held := f.have.has(i)
		f.mu.Unlock()
		if !held {
			select {
			case <-f.landed:
				continue
			case <-ctx.Done():
				return hashResult{err: ctx.Err()}
			}
		}
		n := chunkLen(f.rec.Size, f.rec.Chunk, i)
		if _, err := f.part.ReadAt(buf[:n], int64(i)*int64(f.rec.Chunk)); err != nil {
			return hashResult{err: err}
		}
		h.Write(buf[:n])
		i++
	}
	return hashResult{sum: [32]byte(h.Sum(nil))}
}

// fetchFrom fetches from one member, with inflight requests at a time,
// until nothing is left to ask or a request fails. A member this node is
// not connected to is dialled first, briefly: an offline sender must not
// hold the requests for p2p's whole request timeout.
func (f *fetch) fetchFrom(ctx context.Context, s source) error {
	g := f.t.g
	if !g.n.p2p.Connected(s.peer) {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		err := g.n.p2p.Connect(dctx, peer.AddrInfo{ID: s.peer})
		cancel()
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, inflight)
	for range inflight {
		go func() { errs <- f.worker(ctx, s) }()
	}
	var first error
	for range inflight {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func (f *fetch) worker(ctx context.Context, s source) error {
	for {
		first, count := f.claim(f.window())
		if count == 0 {
			return nil
		}
		if err := f.t.acquire(ctx, s.peer); err != nil {
			f.unclaim(first, count)
			return err
		}
		start := time.Now()
		err := f.request(ctx, s, first, count)
		f.t.release(s.peer)
		f.unclaim(first, count)
		if err != nil {
			return err
		}
		f.measured(int64(count)*int64(f.rec.Chunk), time.Since(start))
	}
}

// window is how many chunks the next request asks for.
func (f *fetch) window() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rate == 0 {
		return firstWindow
	}
	return int(max(1, min(maxWindow, f.rate*windowTime.Seconds()/float64(f.rec.Chunk))))
}

// measured notes that an answer of n bytes took d.
func (f *fetch) measured(n int64, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate = float64(n) / max(d.Seconds(), 1e-3)
}

// claim takes the first run of at most n chunks that are neither held
// nor asked for, and at most a share of those left: the requests in
// flight split the end of a file between them.
func (f *fetch) claim(n int) (first, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	free := 0
	for i := range f.chunks {
		if !f.have.has(i) && !f.claimed.has(i) {
			free++
		}
	}
	n = min(n, (free+inflight-1)/inflight)
	first = -1
	for i := 0; i < f.chunks && count < n; i++ {
		free := !f.have.has(i) && !f.claimed.has(i)
		switch {
		case free && first < 0:
			first = i
		case !free && first >= 0:
			return first, count
		case !free:
			continue
		}
		f.claimed.set(i)
		count++
	}
	return first, count
}

func (f *fetch) unclaim(first, count int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := first; i < first+count; i++ {
		f.claimed[i/8] &^= 1 << (i % 8)
	}
}

// request asks s for count chunks from first and writes them as they
// come. Each chunk is decrypted out of the stream's buffer into a buffer
// of the fetch's (getBuf), and written on a goroutine of its own, up to
// queuedFrames chunks behind the stream: a reader that stops for each
// write holds the stream's flow-control window shut, and the sender
// waits on it.
func (f *fetch) request(ctx context.Context, s source, first, count int) error {
	g := f.t.g
	req := &fileRequest{groupID: g.gid, responder: s.identity, fileID: f.fileID, first: uint32(first), count: uint32(count)}
	if err := g.signFileRequest(ctx, req); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []byte, queuedFrames)
	var werr error // the writer's, read once it is done
	written := make(chan struct{})
	go func() {
		defer close(written)
		next := first
		for plain := range chunks {
			if werr == nil {
				if werr = f.put(next, plain); werr != nil {
					cancel()
				}
				next++
			}
			f.putBuf(plain)
		}
		if werr == nil && next != first+count {
			werr = fmt.Errorf("%w: %d chunks of %d", errBadChunk, next-first, count)
		}
	}()
	maxFrame := 4 + f.aead.sealedLen(f.rec.Chunk)
	want := first
	err := g.n.p2p.RequestEachReused(ctx, s.peer, protoFile, req.encode(), func(frame []byte) error {
		if len(frame) > maxFrame {
			return fmt.Errorf("%w: frame of %d bytes", errBadChunk, len(frame))
		}
		plain, err := f.openChunk(want, frame)
		if err != nil {
			return err
		}
		want++
		select {
		case chunks <- plain:
			return nil
		case <-ctx.Done():
			f.putBuf(plain)
			return ctx.Err()
		}
	})
	close(chunks)
	<-written
	if werr != nil {
		return werr // the cause; the request was cancelled for it
	}
	return err
}

// queuedFrames bounds the chunks decrypted ahead of the one being
// written.
const queuedFrames = 4

// openChunk opens the frame that must bring chunk want, into a buffer
// of getBuf's.
func (f *fetch) openChunk(want int, frame []byte) ([]byte, error) {
	buf := f.getBuf()
	index, plain, err := f.aead.openChunkFrame(buf, frame)
	switch {
	case err != nil:
	case int(index) != want:
		err = fmt.Errorf("%w: chunk %d where %d was due", errBadChunk, index, want)
	case len(plain) != chunkLen(f.rec.Size, f.rec.Chunk, want):
		err = fmt.Errorf("%w: chunk %d of %d bytes", errBadChunk, index, len(plain))
	}
	if err != nil {
		f.putBuf(buf)
		return nil, err
	}
	return plain, nil
}

// getBuf is a buffer of a chunk's size, from those the fetch keeps or
// new; putBuf gives one back. The fetch keeps as many as its requests
// can hold at once (inflight of them, each a chunk being written,
// queuedFrames queued and one being decrypted): a file's chunks are
// written from a few buffers, not one allocation each.
func (f *fetch) getBuf() []byte {
	select {
	case b := <-f.bufs:
		return b
	default:
		return make([]byte, 0, f.rec.Chunk)
	}
}

func (f *fetch) putBuf(b []byte) {
	if cap(b) < f.rec.Chunk {
		return
	}
	select {
	case f.bufs <- b[:0]:
	default:
	}
}

// put writes chunk i into the .part file and records it held.
func (f *fetch) put(i int, plain []byte) error {
	if _, err := f.part.WriteAt(plain, int64(i)*int64(f.rec.Chunk)); err != nil {
		return fmt.Errorf("%w: %w", errLocalWrite, err)
	}
	f.mu.Lock()
	if !f.have.has(i) {
		f.have.set(i)
		f.held++
	}
	select {
	case f.landed <- struct{}{}:
	default:
	}
	event := f.held < f.chunks && time.Since(f.evented) >= eventEvery
	if event {
		f.evented = time.Now()
	}
	done := min(int64(f.held)*int64(f.rec.Chunk), f.rec.Size)
	f.mu.Unlock()
	if event {
		f.t.g.n.broadcast(api.Event{Type: api.EventFile, Group: f.t.g.hexID, File: &api.Progress{ID: f.id, Name: f.rec.Name, Done: done, Total: f.rec.Size}})
	}
	return nil
}

// saveLoop makes the progress durable every saveEvery, until ctx ends.
func (f *fetch) saveLoop(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(saveEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := f.save(); err != nil {
			log.Warn("recording a file's progress", "err", err)
		}
	}
}

// save makes the progress durable: the .part file synced, then the
// chunks it held before the sync recorded. It does nothing if no chunk
// came since the last save.
func (f *fetch) save() error {
	f.mu.Lock()
	if f.held == f.savedHeld {
		f.mu.Unlock()
		return nil
	}
	have, held := f.have.clone(), f.held
	f.mu.Unlock()
	if err := f.part.Sync(); err != nil {
		return fmt.Errorf("%w: %w", errLocalWrite, err)
	}
	if hook := testHookSaveRecord.Load(); hook != nil {
		(*hook)(f)
	}
	rec := f.rec
	rec.Have = have
	if err := f.t.g.saveFileRecord(f.id, &rec); err != nil {
		// The chunks stay in the .part file; a restart fetches them again.
		return err
	}
	f.mu.Lock()
	f.savedHeld = held
	f.mu.Unlock()
	return nil
}

// finish checks a file whose chunks are all in and moves it into place:
// the record says where first, so that a crash between the two leaves a
// .part file that resume moves.
func (f *fetch) finish(log *slog.Logger, h hashResult) {
	ok := h.err == nil && h.sum == f.sum
	if err := f.part.Sync(); err != nil {
		log.Error("syncing a received file", "err", err)
		return
	}
	g := f.t.g
	rec := f.rec
	rec.Have = nil
	if !ok {
		rec.State = fileCorrupt
		if err := g.saveFileRecord(f.id, &rec); err != nil {
			log.Error("recording a corrupt file", "err", err)
			return
		}
		os.Remove(f.t.partPath(f.id))
		log.Warn("received file does not match its SHA-256; dropped", "name", rec.Name, "hash_err", h.err)
		return
	}
	rec.State = fileDone
	rec.Path = uniquePath(filepath.Join(f.t.filesDir(), safeName(rec.Name)))
	if err := g.saveFileRecord(f.id, &rec); err != nil {
		log.Error("recording a received file", "err", err)
		return
	}
	if err := os.Rename(f.t.partPath(f.id), rec.Path); err != nil {
		log.Error("moving a received file into place", "err", err)
		return
	}
	log.Info("file received", "path", rec.Path, "bytes", rec.Size)
	g.n.broadcast(api.Event{Type: api.EventFile, Group: g.hexID, File: &api.Progress{ID: f.id, Name: rec.Name, Done: rec.Size, Total: rec.Size}})
}
