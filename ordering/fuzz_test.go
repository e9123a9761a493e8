package ordering

import (
	"bytes"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
)

// FuzzDecodeEnvelope: no input panics the envelope, head and application
// message decoders, and what decodes re-encodes to the same bytes.
func FuzzDecodeEnvelope(f *testing.F) {
	head := &Head{GroupID: []byte("g"), Epoch: 3, Seq: 9, SignatureKey: []byte("k"), Signature: []byte("s"),
		Logs: []LogDigest{{Epoch: 2, Count: 1}}}
	f.Add((&Envelope{Kind: KindHead, Payload: codec.MustMarshal(head)}).Encode())
	f.Add((&Envelope{Kind: KindApplication, Payload: []byte{0, 1, 0, 2}}).Encode())
	f.Add(codec.MustMarshal(&AppMessage{ContentType: 1, Body: []byte("hi")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if e, err := DecodeEnvelope(data); err == nil {
			if !bytes.Equal(e.Encode(), data) {
				t.Fatal("envelope does not re-encode to the same bytes")
			}
		}
		var h Head
		if codec.Unmarshal(data, &h) == nil && !bytes.Equal(codec.MustMarshal(&h), data) {
			t.Fatal("head does not re-encode to the same bytes")
		}
		var m AppMessage
		if codec.Unmarshal(data, &m) == nil && !bytes.Equal(codec.MustMarshal(&m), data) {
			t.Fatal("application message does not re-encode to the same bytes")
		}
	})
}

// FuzzSyncMessages: no input panics the catch-up decoders.
func FuzzSyncMessages(f *testing.F) {
	req := &syncRequest{groupID: []byte("g"), newest: 4, have: []EpochID{{1}}, signatureKey: []byte("k"), signature: []byte("s"),
		logs: []LogDigest{{Epoch: 1, Count: 2}}}
	f.Add(req.encode())
	req.wantVotes, req.held = true, []heldVote{{id: [16]byte{7}, seq: 9}, {id: [16]byte{8}, seq: 1}}
	f.Add(req.encode())
	req.wantGroupInfo = true
	f.Add(req.encode())
	sk := newLogSketch(sketchCells(1))
	sk.add([2]uint64{1, 2}, [8]byte{3}, 1)
	req.heldLogs = []heldLog{{epoch: EpochID{1}, sketch: sk}, {epoch: EpochID{2}, ids: [][8]byte{{4}}}}
	f.Add(req.encode())
	f.Add((&syncResponse{status: syncOK, envelopes: [][]byte{{1, 2}}, relist: true}).encode())
	f.Add((&syncResponse{status: syncOK, envelopes: [][]byte{{1, 2}}, leftOut: []heldLog{{epoch: EpochID{1}, ids: [][8]byte{{2}, {3}}}, {epoch: EpochID{4}, ids: [][8]byte{{5}}}}}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := decodeSyncRequest(data); err == nil {
			if !bytes.Equal(r.encode(), data) {
				t.Fatal("sync request does not re-encode to the same bytes")
			}
			// A sketch, whatever its cells, peels or says it does not,
			// in bounded time.
			for _, h := range r.heldLogs {
				if h.sketch != nil {
					h.sketch.peel(sketchKey(r.nonce))
				}
			}
		}
		if r, err := decodeSyncResponse(data); err == nil && !bytes.Equal(r.encode(), data) {
			t.Fatal("sync response does not re-encode to the same bytes")
		}
	})
}

// FuzzRestore: saved loop state that does not decode gives an error, never
// a panic.
func FuzzRestore(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, meta []byte) {
		l, err := Restore(Config{}, &Saved{Meta: meta}, time.Unix(0, 0))
		if err == nil && l == nil {
			t.Fatal("no loop and no error")
		}
	})
}
