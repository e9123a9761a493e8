package ordering

import (
	"crypto/sha256"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

// maxSyncBytes bounds one catch-up response; a member further behind asks
// again.
const maxSyncBytes = 4 << 20

// syncRequest asks a member for what came after the newest epoch both
// know.
//
//	struct {
//	    opaque group_id<V>;
//	    opaque requester<V>;      // the requester's identity: the stream's peer must be its member
//	    opaque responder<V>;      // the identity of the member asked
//	    uint64 time;              // the requester's clock, Unix milliseconds
//	    opaque nonce[16];         // random: no two requests are alike
//	    uint64 newest;            // the highest epoch number held
//	    opaque have<V>;           // epoch ids, newest first, 32 bytes each; then those of the opaque epochs held
//	    LogDigest logs<V>;        // the requester's digests: send the logs that differ
//	    bool want_votes;          // send the signed heads held, too,
//	    HeldVote held<V>;         // but not those the requester holds as new
//	    bool want_group_info;     // if none of the requester's epochs is held here, a GroupInfo
//	    HeldLog held_logs<V>;     // what the requester holds of its newest epochs' logs: not sent again
//	    uint32 max_bytes;         // the most envelope bytes to answer with (at most maxSyncBytes)
//	    opaque signature_key<V>;  // the requester's MLS signature key
//	    opaque signature<V>;      // SignWithLabel(., "Parley Sync", fields above)
//	} SyncRequest;
//
//	struct {
//	    opaque identity_hash[16]; // SHA-256 of the member's identity, truncated
//	    uint64 seq;               // the counter of its head the requester holds
//	} HeldVote;
//
//	struct {
//	    opaque epoch_id[32];
//	    uint8 form;               // 0: ids, 1: sketch
//	    select (form) {
//	    case 0: opaque ids<V>;    // the first 8 bytes of the MessageHash of each envelope held in the epoch's log (and refused there)
//	    case 1: opaque cells<V>;  // a logSketch of the same ids, keyed by the nonce: {uint16 count; uint64 ids; uint32 check} each
//	    };
//	} HeldLog;
//
// held_logs make catch-up page: an answer carries only what the requester
// lacks, within maxSyncBytes, and says whether more is left; the
// requester, having taken it, asks again at once, listing what it now
// holds. A large file is one message among others, never a wall that
// every answer repeats.
type syncRequest struct {
	groupID []byte
	// requester and responder bind the request to the two members, time
	// and nonce to this exchange: it is worth nothing replayed to
	// another member or later (see Loop.authenticate).
	requester, responder string
	time                 uint64
	nonce                [16]byte
	newest               uint64
	have                 []EpochID
	logs                 []LogDigest // the requester's digests of canonical epochs to compare
	wantVotes            bool
	held                 []heldVote
	// wantGroupInfo asks for a GroupInfo to rejoin with if the responder
	// holds none of the requester's epochs (see checkAbandoned).
	wantGroupInfo bool
	// heldLogs say which envelopes of which epochs' logs the requester
	// holds already.
	heldLogs []heldLog
	// maxBytes bounds the answer's envelopes: a member that asks several
	// peers at once asks each for a little (firstPageBytes), and pages
	// through the rest with one of them.
	maxBytes     uint32
	signatureKey []byte
	signature    []byte
}

// heldLog lists the envelopes a requester holds of one epoch's log, by
// the first 8 bytes of their MessageHash, or sketches them (see
// logSketch) when it expects the responder's log to differ from its own
// by much less than the log.
type heldLog struct {
	epoch  EpochID
	ids    [][8]byte
	sketch *logSketch
}

// HeldLog forms.
const (
	heldFormIDs    = 0
	heldFormSketch = 1
)

// firstPageBytes bounds the answer to a request made while others are
// outstanding: they may bring the same envelopes.
const firstPageBytes = 256 << 10

// probePageBytes bounds the answer to a request of widenSync made while
// others are outstanding: it asks to find a member that can help, and
// pages from the first that answers with more.
const probePageBytes = 32 << 10

// maxHeldIDs bounds the envelopes a request lists as held (512 KiB);
// past it, the requester gets some it holds again.
const maxHeldIDs = 1 << 16

// heldVote says which head of a member the requester of votes holds.
type heldVote struct {
	id  [16]byte
	seq uint64
}

const heldVoteLen = 24

// maxHeldVotes bounds the list (1.5 MiB at most); past it, the requester
// lists the members in identity-hash order and gets the rest again.
const maxHeldVotes = 1 << 16

// identityHash is the key of a member's head in a HeldVote list.
func identityHash(identity string) [16]byte {
	h := sha256.Sum256([]byte(identity))
	return [16]byte(h[:16])
}

// syncLabel is the SignWithLabel label of sync requests; "v2" since they
// name both peers and a time (a request of the first format, bound to
// nothing, is worth nothing now).
const syncLabel = "Parley Sync v2"

func (r *syncRequest) body(b *cryptobyte.Builder) {
	codec.AddOpaque(b, r.groupID)
	codec.AddOpaque(b, []byte(r.requester))
	codec.AddOpaque(b, []byte(r.responder))
	b.AddUint64(r.time)
	b.AddBytes(r.nonce[:])
	b.AddUint64(r.newest)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, h := range r.have {
			b.AddBytes(h[:])
		}
	})
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, d := range r.logs {
			b.AddUint64(d.Epoch)
			b.AddUint32(d.Count)
			b.AddBytes(d.Digest[:])
		}
	})
	codec.AddBool(b, r.wantVotes)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, v := range r.held {
			b.AddBytes(v.id[:])
			b.AddUint64(v.seq)
		}
	})
	codec.AddBool(b, r.wantGroupInfo)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, h := range r.heldLogs {
			b.AddBytes(h.epoch[:])
			if h.sketch != nil {
				b.AddUint8(heldFormSketch)
				codec.AddVector(b, h.sketch.marshal)
				continue
			}
			b.AddUint8(heldFormIDs)
			codec.AddVector(b, func(b *cryptobyte.Builder) {
				for _, id := range h.ids {
					b.AddBytes(id[:])
				}
			})
		}
	})
	b.AddUint32(r.maxBytes)
	codec.AddOpaque(b, r.signatureKey)
}

func (r *syncRequest) encode() []byte {
	var b cryptobyte.Builder
	r.body(&b)
	codec.AddOpaque(&b, r.signature)
	return b.BytesOrPanic()
}

func (r *syncRequest) tbs() []byte {
	var b cryptobyte.Builder
	r.body(&b)
	return b.BytesOrPanic()
}

func decodeSyncRequest(data []byte) (*syncRequest, error) {
	r := &syncRequest{}
	s := cryptobyte.String(data)
	var have, logs, held, heldLogs cryptobyte.String
	var requester, responder, nonce []byte
	if !codec.ReadOpaque(&s, &r.groupID) || !codec.ReadOpaque(&s, &requester) || !codec.ReadOpaque(&s, &responder) ||
		!s.ReadUint64(&r.time) || !s.ReadBytes(&nonce, 16) || !s.ReadUint64(&r.newest) || !codec.ReadVector(&s, &have) || len(have)%32 != 0 ||
		!codec.ReadVector(&s, &logs) || len(logs)%20 != 0 || len(logs) > 20*4*logDigests ||
		!codec.ReadBool(&s, &r.wantVotes) || !codec.ReadVector(&s, &held) || len(held)%heldVoteLen != 0 || len(held) > heldVoteLen*maxHeldVotes ||
		!codec.ReadBool(&s, &r.wantGroupInfo) || !codec.ReadVector(&s, &heldLogs) || !s.ReadUint32(&r.maxBytes) ||
		!codec.ReadOpaque(&s, &r.signatureKey) || !codec.ReadOpaque(&s, &r.signature) || !s.Empty() {
		return nil, ErrMalformedRequest
	}
	r.requester, r.responder, r.nonce = string(requester), string(responder), [16]byte(nonce)
	total, cells := 0, 0
	for !heldLogs.Empty() {
		var h heldLog
		var epoch []byte
		var form uint8
		var ids cryptobyte.String
		if !heldLogs.ReadBytes(&epoch, 32) || !heldLogs.ReadUint8(&form) || !codec.ReadVector(&heldLogs, &ids) || len(r.heldLogs) >= 4*logDigests {
			return nil, ErrMalformedRequest
		}
		h.epoch = EpochID(epoch)
		if form == heldFormSketch {
			if cells += len(ids) / sketchCellLen; cells > maxSketchCells {
				return nil, ErrMalformedRequest
			}
			sk, err := parseLogSketch(ids)
			if err != nil {
				return nil, ErrMalformedRequest
			}
			h.sketch = sk
			r.heldLogs = append(r.heldLogs, h)
			continue
		}
		if form != heldFormIDs || len(ids)%8 != 0 {
			return nil, ErrMalformedRequest
		}
		if total += len(ids) / 8; total > maxHeldIDs {
			return nil, ErrMalformedRequest
		}
		h.ids = make([][8]byte, 0, len(ids)/8)
		for !ids.Empty() {
			var id []byte
			ids.ReadBytes(&id, 8)
			h.ids = append(h.ids, [8]byte(id))
		}
		r.heldLogs = append(r.heldLogs, h)
	}
	for !held.Empty() {
		var v heldVote
		var id []byte
		held.ReadBytes(&id, 16)
		held.ReadUint64(&v.seq)
		v.id = [16]byte(id)
		r.held = append(r.held, v)
	}
	for !have.Empty() {
		var id []byte
		have.ReadBytes(&id, 32)
		var e EpochID
		copy(e[:], id)
		r.have = append(r.have, e)
	}
	for !logs.Empty() {
		var d LogDigest
		var dg []byte
		logs.ReadUint64(&d.Epoch)
		logs.ReadUint32(&d.Count)
		logs.ReadBytes(&dg, 8)
		copy(d.Digest[:], dg)
		r.logs = append(r.logs, d)
	}
	return r, nil
}

// Sync response statuses.
const (
	syncOK      = 1 // envelopes follow
	syncRejoin  = 2 // the requester's epochs lost or were pruned: a GroupInfo to rejoin with
	syncRefused = 3 // the requester is not a member of the responder's epoch
	syncUnknown = 4 // the requester's epochs are unknown here: ask someone else
	syncGone    = 5 // the responder is no longer a member itself
	syncOlder   = 6 // the requester's epochs are older than the responder's history: a GroupInfo, to use if nobody else can help
	syncStale   = 7 // the request's time is too far from the responder's clock: nothing served, nothing counted
)

//	struct {
//	    uint8 status;
//	    opaque tip[32];
//	    opaque envelopes<V>;   // opaque envelope<V>, in order
//	    opaque group_info<V>;  // encoded MLSMessage, for syncRejoin
//	    opaque heads<V>;       // opaque head<V>: signed head envelopes, for syncRefused
//	    bool more;             // envelopes were left out to keep within maxSyncBytes: ask again
//	    uint64 member_since;   // with a GroupInfo: the epoch from which the requester has been a member
//	    bool relist;           // a HeldLog sketch did not peel: ask again, listing those ids in full
//	    LeftOut left_out<V>;   // envelopes left out because gossip is bringing them (absent: none)
//	} SyncResponse;
//
//	struct {
//	    opaque epoch_id[32];
//	    opaque ids<V>;         // the first 8 bytes of the MessageHash of each envelope left out
//	} LeftOut;
type syncResponse struct {
	more      bool
	status    uint8
	tip       EpochID
	envelopes [][]byte
	groupInfo []byte
	heads     [][]byte
	// memberSince, with a GroupInfo to rejoin with, is the first epoch of
	// the responder's chain from which the requester has been a member
	// without a break (as far back as the responder holds): the rejoiner
	// may have missed everything from there, even epochs older than any it
	// holds, when its add was re-issued on the winning branch.
	memberSince uint64
	// relist says that a sketch of what the requester holds of a log
	// (see logSketch) told more differences than it could: nothing of
	// that log was sent, and the requester asks again with its ids.
	relist bool
	// leftOut lists, per epoch, the application envelopes the answer
	// left out because they reached the responder by gossip less than
	// GossipGrace ago: gossip is most likely bringing them to the
	// requester too. The requester waits that long, and asks the
	// responder again for those that did not come (see askLeftOut).
	leftOut []heldLog
}

// maxLeftOut bounds the envelopes one answer leaves out; past it, they are
// sent.
const maxLeftOut = 4096

func (r *syncResponse) encode() []byte {
	var b cryptobyte.Builder
	b.AddUint8(r.status)
	b.AddBytes(r.tip[:])
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, e := range r.envelopes {
			codec.AddOpaque(b, e)
		}
	})
	codec.AddOpaque(&b, r.groupInfo)
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, h := range r.heads {
			codec.AddOpaque(b, h)
		}
	})
	codec.AddBool(&b, r.more)
	b.AddUint64(r.memberSince)
	codec.AddBool(&b, r.relist)
	if len(r.leftOut) > 0 {
		codec.AddVector(&b, func(b *cryptobyte.Builder) {
			for _, h := range r.leftOut {
				b.AddBytes(h.epoch[:])
				codec.AddVector(b, func(b *cryptobyte.Builder) {
					for _, id := range h.ids {
						b.AddBytes(id[:])
					}
				})
			}
		})
	}
	return b.BytesOrPanic()
}

func decodeSyncResponse(data []byte) (*syncResponse, error) {
	r := &syncResponse{}
	s := cryptobyte.String(data)
	var tip []byte
	if !s.ReadUint8(&r.status) || !s.ReadBytes(&tip, 32) || !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		var e []byte
		if !codec.ReadOpaque(s, &e) {
			return false
		}
		r.envelopes = append(r.envelopes, e)
		return true
	}) || !codec.ReadOpaque(&s, &r.groupInfo) || !codec.ReadVectorElems(&s, func(s *cryptobyte.String) bool {
		var h []byte
		if !codec.ReadOpaque(s, &h) {
			return false
		}
		r.heads = append(r.heads, h)
		return true
	}) || !codec.ReadBool(&s, &r.more) || !s.ReadUint64(&r.memberSince) || !codec.ReadBool(&s, &r.relist) {
		return nil, ErrMalformedRequest
	}
	// left_out is absent from answers that leave nothing out (and from
	// those of members that never do).
	if !s.Empty() {
		var left cryptobyte.String
		if !codec.ReadVector(&s, &left) || !s.Empty() {
			return nil, ErrMalformedRequest
		}
		total := 0
		for !left.Empty() {
			var epoch []byte
			var ids cryptobyte.String
			if !left.ReadBytes(&epoch, 32) || !codec.ReadVector(&left, &ids) || len(ids) == 0 || len(ids)%8 != 0 {
				return nil, ErrMalformedRequest
			}
			if total += len(ids) / 8; total > maxLeftOut {
				return nil, ErrMalformedRequest
			}
			h := heldLog{epoch: EpochID(epoch), ids: make([][8]byte, 0, len(ids)/8)}
			for !ids.Empty() {
				var id []byte
				ids.ReadBytes(&id, 8)
				h.ids = append(h.ids, [8]byte(id))
			}
			r.leftOut = append(r.leftOut, h)
		}
		if len(r.leftOut) == 0 {
			return nil, ErrMalformedRequest // present but empty: not the encoding of anything
		}
	}
	copy(r.tip[:], tip)
	return r, nil
}

// SyncRequestForm is a catch-up request's fields, for tools and tests that
// speak the protocol from outside (an attack suite, a protocol analyser).
// A member's loop makes and checks requests itself.
type SyncRequestForm struct {
	GroupID              []byte
	Requester, Responder string
	Time                 uint64
	Nonce                [16]byte
	Newest               uint64
	Have                 []EpochID
	WantVotes            bool
	WantGroupInfo        bool
	MaxBytes             uint32
	SignatureKey         []byte
	Signature            []byte
}

// ParseSyncRequest decodes a catch-up request.
func ParseSyncRequest(data []byte) (*SyncRequestForm, error) {
	r, err := decodeSyncRequest(data)
	if err != nil {
		return nil, err
	}
	return &SyncRequestForm{
		GroupID: r.groupID, Requester: r.requester, Responder: r.responder, Time: r.time, Nonce: r.nonce,
		Newest: r.newest, Have: r.have, WantVotes: r.wantVotes, WantGroupInfo: r.wantGroupInfo,
		MaxBytes: r.maxBytes, SignatureKey: r.signatureKey, Signature: r.signature,
	}, nil
}

// Encode encodes the request as given (its signature is not made or
// checked here).
func (f *SyncRequestForm) Encode() []byte {
	r := &syncRequest{
		groupID: f.GroupID, requester: f.Requester, responder: f.Responder, time: f.Time, nonce: f.Nonce,
		newest: f.Newest, have: f.Have, wantVotes: f.WantVotes, wantGroupInfo: f.WantGroupInfo,
		maxBytes: f.MaxBytes, signatureKey: f.SignatureKey, signature: f.Signature,
	}
	return r.encode()
}

// SyncResponseForm is a catch-up answer's fields (see SyncRequestForm).
type SyncResponseForm struct {
	// Status is 1 for envelopes, 2 for a GroupInfo to rejoin with, 3 for
	// a refusal, 4 for epochs unknown to the responder, 5 for a responder
	// that is no member, 6 for a GroupInfo of a later history, 7 for a
	// request whose time is off.
	Status    uint8
	Tip       EpochID
	Envelopes [][]byte
	GroupInfo []byte
	Heads     [][]byte
	// More says that envelopes were left out to keep the answer within
	// its bound.
	More bool
	// MemberSince comes with a GroupInfo: the epoch from which the
	// requester has been a member on the responder's chain.
	MemberSince uint64
	// Relist says that a sketch of held envelopes did not peel: ask
	// again listing them.
	Relist bool
	// LeftOut lists, per epoch, the envelopes (by the first 8 bytes of
	// their MessageHash) left out because gossip is bringing them.
	LeftOut map[EpochID][][8]byte
}

// ParseSyncResponse decodes a catch-up answer.
func ParseSyncResponse(data []byte) (*SyncResponseForm, error) {
	r, err := decodeSyncResponse(data)
	if err != nil {
		return nil, err
	}
	f := &SyncResponseForm{Status: r.status, Tip: r.tip, Envelopes: r.envelopes, GroupInfo: r.groupInfo, Heads: r.heads, More: r.more, MemberSince: r.memberSince, Relist: r.relist}
	for _, h := range r.leftOut {
		if f.LeftOut == nil {
			f.LeftOut = map[EpochID][][8]byte{}
		}
		f.LeftOut[h.epoch] = append(f.LeftOut[h.epoch], h.ids...)
	}
	return f, nil
}

// Empty reports whether the answer carries nothing of the group: no
// epoch id, envelope, head, GroupInfo or envelope left out.
func (f *SyncResponseForm) Empty() bool {
	return f.Tip.IsZero() && len(f.Envelopes) == 0 && len(f.GroupInfo) == 0 && len(f.Heads) == 0 && len(f.LeftOut) == 0
}

// RefusedResponse is the answer to a catch-up request that is not a
// member's: a bare refusal. A node answers so for a group it is not in,
// too, so that the answer does not tell whether it is.
func RefusedResponse() []byte { return (&syncResponse{status: syncRefused}).encode() }
