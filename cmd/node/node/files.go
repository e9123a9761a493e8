package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/store"
)

// Files (issue 17). The group carries only a small, ordered announcement
// of a file: an application message (contentFileAnnounce, filewire.go)
// with its name, size, SHA-256, chunk size and a fresh random content key,
// which only the members of the epoch it was sent in can read. The content
// goes over direct streams: each member that gets the announcement fetches
// the chunks (parley-file/1, fileserve.go) from the sender, which serves
// the file from where it lies, or from any member that holds it complete,
// sealed under the content key, a window of chunks per request with two
// requests in flight (filefetch.go). Chunks are written into
// DIR/files/GROUP/.part-ID as they arrive, and the store records which are
// there; once all are and the SHA-256 checks, the .part file takes the
// file's name and its member serves it too.
//
// Nothing of the content goes into the store or the group's log: each file
// has one record (scope "file", fileRecord), which holds the content key.
// The store is sealed at rest (store/keyring.go) as it is for epoch
// secrets and private keys, which it holds the same way.
const (
	chunkSize   = 256 << 10
	maxFileSize = 1 << 30
	scopeFile   = "file"
)

// Scopes of the retired format, in which chunks travelled through the
// group as ordered messages and were kept in the store: what a store
// holds of them is dropped (dropRetiredTransfers), and read for the path
// of a file it completed.
const (
	scopeSending   = "sending"
	scopeReceiving = "receiving"
	scopeFileDone  = "filedone"
)

// States of a fileRecord.
const (
	fileOwn       = "own"       // this member sent it and serves it from Source
	fileReceiving = "receiving" // arriving into its .part file
	fileDone      = "done"      // complete at Path, served from there
	fileCorrupt   = "corrupt"   // arrived with the wrong SHA-256; dropped
)

// fileRecord is what a member keeps of a file (scope "file", key the
// group id, "|", the file id: the announcement's message id).
type fileRecord struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
	Chunk  int    `json:"chunk"`
	// Key is the content key: secret, like the epoch secrets in the same
	// store.
	Key    []byte `json:"key"`
	Sender string `json:"sender"` // the sender's member identity
	State  string `json:"state"`
	// Source and ModTime are where an own file is and its modification
	// time when announced: a file that changed since is not served.
	Source  string `json:"source,omitempty"`
	ModTime int64  `json:"mtime,omitempty"`
	// Path is where a received file is once complete.
	Path string `json:"path,omitempty"`
	// Have are the chunks of an arriving file that are in its .part file
	// on disk (bit i%8 of byte i/8): the file resumes from them.
	Have bitset `json:"have,omitempty"`
}

func (r *fileRecord) chunks() int { return chunkCount(r.Size, r.Chunk) }

// bitset is a set of chunk indexes.
type bitset []byte

func newBitset(n int) bitset                   { return make(bitset, (n+7)/8) }
func (b bitset) has(i int) bool                { return i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }
func (b bitset) set(i int)                     { b[i/8] |= 1 << (i % 8) }
func (b bitset) clone() bitset                 { return append(bitset(nil), b...) }
func fileKey(g *groupRunner, id string) string { return g.hexID + "|" + id }

// fileRecord reads a file's record.
func (g *groupRunner) fileRecord(ctx context.Context, id string) (*fileRecord, error) {
	raw, err := g.n.st.Setting(ctx, scopeFile, fileKey(g, id))
	if err != nil {
		return nil, err
	}
	return unmarshalFileRecord(raw)
}

func unmarshalFileRecord(raw []byte) (*fileRecord, error) {
	var r fileRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%w: file record: %w", store.ErrCorrupt, err)
	}
	return &r, nil
}

func (g *groupRunner) putFileRecord(b *store.Batch, id string, r *fileRecord) {
	rec, err := json.Marshal(r)
	if err != nil {
		panic(err) // a struct of strings, numbers and bytes always marshals
	}
	b.PutSetting(scopeFile, fileKey(g, id), rec)
}

// saveFileRecord writes a file's record on its own.
func (g *groupRunner) saveFileRecord(id string, r *fileRecord) error {
	b := g.n.st.NewBatch()
	g.putFileRecord(b, id, r)
	return g.n.st.Write(context.Background(), b)
}

// SendFile implements api.Backend: it announces the file to the group and
// serves it from where it is; the file must stay there, unchanged, until
// the members have it.
func (n *Node) SendFile(ctx context.Context, ref, path string) (string, error) {
	g, err := n.activeGroup(ref)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", api.ErrInvalid, abs)
	}
	if fi.Size() > maxFileSize {
		return "", fmt.Errorf("%w: %s is larger than 1 GiB", api.ErrInvalid, abs)
	}
	a := fileAnnouncement{name: filepath.Base(abs), size: fi.Size(), chunkSize: chunkSize}
	if len(a.name) > maxFileName {
		return "", fmt.Errorf("%w: a file name is at most %d bytes", api.ErrInvalid, maxFileName)
	}
	h := sha256.New()
	if k, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", abs, err)
	} else if k != fi.Size() {
		return "", fmt.Errorf("%w: %s changed while it was read", api.ErrInvalid, abs)
	}
	a.sha256 = [32]byte(h.Sum(nil))
	if _, err := randRead(a.key[:]); err != nil {
		return "", err
	}
	rec := &fileRecord{Name: a.name, Size: a.size, SHA256: hex.EncodeToString(a.sha256[:]), Chunk: a.chunkSize,
		Key: a.key[:], State: fileOwn, Source: abs, ModTime: fi.ModTime().UnixNano()}
	var id string
	alone := false
	err = g.do(ctx, func() error {
		rec.Sender = g.loop.Self()
		alone = len(g.loop.Tip().Members) <= 1
		var err error
		// The record goes with the announcement, in one transaction: a
		// member that has the announcement can always fetch the file.
		id, err = g.send(contentFileAnnounce, a.encode(), func(b *store.Batch, id string) { g.putFileRecord(b, id, rec) })
		return err
	})
	if err != nil {
		return "", err
	}
	if alone || a.size == 0 {
		// Nobody to fetch it (or nothing to fetch): it is all sent.
		g.n.broadcast(api.Event{Type: api.EventFile, Group: g.hexID, File: &api.Progress{ID: id, Name: a.name, Done: a.size, Total: a.size}})
	}
	return id, nil
}

// announced acts on a delivered file announcement: a member that is not
// its sender fetches the file (its record was written with the delivery,
// see recordAnnouncements).
func (g *groupRunner) announced(d ordering.Delivery) {
	if g.own(d.Sender) {
		return
	}
	id := hex.EncodeToString(d.ID[:])
	rec, err := g.fileRecord(g.n.ctx, id)
	if err != nil && g.n.ctx.Err() != nil {
		return // the node is closing: resume fetches it at the next start
	}
	if err != nil {
		g.n.log.Warn("a file announced without its record", "group", g.hexID[:8], "file", id, "err", err)
		return
	}
	if rec.State == fileReceiving {
		g.files.fetch(id, rec)
	}
}

// own reports whether a member identity is this node's.
func (g *groupRunner) own(identity string) bool {
	p, _, err := ParseMemberID(identity)
	return err == nil && p == g.n.id.PeerID
}

// recordAnnouncements adds to b the record of every file that out
// announces to this member, in the transaction that records the
// announcement as delivered (called by persistAll). skip are the history
// entries already there: their files are recorded already.
func (g *groupRunner) recordAnnouncements(ctx context.Context, b *store.Batch, out *ordering.Output, skip map[string]bool) {
	hist := historyGroup(g.gid)
	for _, d := range out.Deliveries {
		if d.ContentType != contentFileAnnounce || skip[skipKey(hist, d.ID[:])] || g.own(d.Sender) {
			continue
		}
		a, err := decodeAnnouncement(d.Body)
		if err != nil {
			g.n.log.Warn("a file announcement that does not decode; the file is not fetched", "group", g.hexID[:8], "from", d.Sender, "err", err)
			continue
		}
		id := hex.EncodeToString(d.ID[:])
		if _, err := g.n.st.Setting(ctx, scopeFile, fileKey(g, id)); err == nil {
			continue // delivered again after a crash: the record has its progress
		}
		g.putFileRecord(b, id, &fileRecord{Name: a.name, Size: a.size, SHA256: hex.EncodeToString(a.sha256[:]), Chunk: a.chunkSize,
			Key: a.key[:], Sender: d.Sender, State: fileReceiving, Have: newBitset(chunkCount(a.size, a.chunkSize))})
	}
}

// fileState fills in how much of a file arrived and where it is.
func (g *groupRunner) fileState(m *api.Message) {
	if m.Own {
		m.File.Received = m.File.Size
		return
	}
	if got, ok := g.files.received(m.ID); ok {
		m.File.Received = got
		return
	}
	rec, err := g.fileRecord(g.n.ctx, m.ID)
	if err == nil {
		switch rec.State {
		case fileDone:
			m.File.Path, m.File.Received = rec.Path, m.File.Size
		case fileReceiving:
			m.File.Received = min(int64(rec.Have.count())*int64(rec.Chunk), m.File.Size)
		}
		return
	}
	// A file completed in the retired format.
	if p, err := g.n.st.Setting(g.n.ctx, scopeFileDone, fileKey(g, m.ID)); err == nil && !strings.HasPrefix(string(p), "!") {
		m.File.Path, m.File.Received = string(p), m.File.Size
	}
}

func (b bitset) count() int {
	n := 0
	for _, x := range b {
		for ; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}

// dropRetiredTransfers deletes what the store holds of this group's
// transfers in the retired format (chunks through the group): records of
// files being sent or received, and the chunks received. Those files do
// not arrive; their senders may send them again.
func (g *groupRunner) dropRetiredTransfers() {
	ctx := g.n.ctx
	dropped := 0
	b := g.n.st.NewBatch()
	for _, scope := range []string{scopeSending, scopeReceiving} {
		recs, err := g.n.st.Settings(ctx, scope)
		if err != nil {
			g.n.log.Warn("reading transfers of the retired format; left", "group", g.hexID[:8], "scope", scope, "err", err)
			continue
		}
		for k := range recs {
			if strings.HasPrefix(k, g.hexID+"|") {
				b.DeleteSetting(scope, k)
				dropped++
			}
		}
	}
	var chunkLogs [][]byte
	if ids, err := g.n.st.Groups(ctx); err == nil {
		prefix := append([]byte{'F'}, g.gid...)
		for _, id := range ids {
			if len(id) > len(prefix) && string(id[:len(prefix)]) == string(prefix) {
				chunkLogs = append(chunkLogs, id)
			}
		}
	}
	if dropped == 0 && len(chunkLogs) == 0 {
		return
	}
	g.n.log.Warn("transfers of the retired format (chunks through the group) dropped; their files do not arrive",
		"group", g.hexID[:8], "records", dropped, "chunk_logs", len(chunkLogs))
	if err := g.n.st.Write(ctx, b); err != nil {
		g.n.log.Warn("dropping transfers of the retired format", "group", g.hexID[:8], "err", err)
	}
	// One write per file's chunks: a large file's may not fit in one
	// transaction with others.
	for _, id := range chunkLogs {
		b := g.n.st.NewBatch()
		b.DeleteGroup(id)
		if err := g.n.st.Write(ctx, b); err != nil {
			g.n.log.Warn("dropping the chunks of a file of the retired format", "group", g.hexID[:8], "err", err)
		}
	}
}

// errNoFile answers a member's request for a file this node does not
// serve.
var errNoFile = errors.New("file not held here")

// safeName keeps a received file's name inside the files directory.
func safeName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == ".." || name == "" || strings.HasPrefix(name, ".") {
		name = "file" + name
	}
	return name
}

func uniquePath(p string) string {
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return p
	}
	ext := filepath.Ext(p)
	base := strings.TrimSuffix(p, ext)
	for i := 1; ; i++ {
		c := fmt.Sprintf("%s (%d)%s", base, i, ext)
		if _, err := os.Stat(c); os.IsNotExist(err) {
			return c
		}
	}
}
