package node

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/store"
)

// TestDuplicateChunkLeavesOtherFilesChunksAlone: a round of writes that
// carries chunks of two files, where one file's chunk is a duplicate
// (a sender that restarted sends a chunk again), keeps the other file's
// chunk of the same index. (The duplicate's index was left out of every
// file, and that file never completed.)
func TestDuplicateChunkLeavesOtherFilesChunksAlone(t *testing.T) {
	ctx := context.Background()
	n := testNode(t, "alice")
	g, err := n.CreateGroup(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	r := n.runner(g.ID)
	fileA, fileB := make([]byte, 16), make([]byte, 16)
	fileA[0], fileB[0] = 0xa, 0xb
	chunk := func(file []byte, index uint32, msg byte) *ordering.Output {
		body := append(append([]byte(nil), file...), binary.BigEndian.AppendUint32(nil, index)...)
		body = append(body, "data"...)
		return &ordering.Output{Deliveries: []ordering.Delivery{{ID: ordering.MessageID{msg}, ContentType: contentFileChunk, Body: body}}}
	}
	err = r.do(ctx, func() error {
		// File A's chunk 5 is in already.
		if err := r.persistAll([]*pendingWrite{{out: chunk(fileA, 5, 1)}}); err != nil {
			return err
		}
		// A round with A's chunk 5 again (another message) and B's 5.
		return r.persistAll([]*pendingWrite{{out: chunk(fileA, 5, 2)}, {out: chunk(fileB, 5, 3)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		file []byte
	}{{"A", fileA}, {"B", fileB}} {
		entries, err := n.st.Log(ctx, fileGroup(r.gid, c.file), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || binary.BigEndian.Uint32(entries[0].ID) != 5 {
			t.Errorf("file %s's chunks: %d entries %v, want its chunk 5 once", c.name, len(entries), entryIDs(entries))
		}
	}
}

func entryIDs(es []store.LogRecord) [][]byte {
	var out [][]byte
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}
