package ordering

import (
	"encoding/binary"
	"errors"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

// A logSketch says which envelopes a member holds of one epoch's log in
// about the size of what the two sides' sets differ by, not of the log
// itself: an invertible Bloom lookup table (Goodrich and Mitzenmacher,
// "Invertible Bloom Lookup Tables", 2011; Eppstein et al., "What's the
// Difference?", SIGCOMM 2011) of the 8-byte envelope ids. The responder
// builds the same table from its own ids, subtracts it, and peels the
// difference: the ids only the requester holds (ask back for them) and
// those only it holds (send them). A log of thousands of texts that lacks
// ten costs a few hundred bytes to describe instead of eight per text.
//
// Each id goes into sketchHashes cells of the table, chosen by a hash
// keyed with the request's nonce, so that no
// member can pick ids that collide in every request. A difference larger
// than the table does not peel: the responder says so (relist), and the
// requester lists its ids in full.
type logSketch struct {
	cells []sketchCell
}

// sketchCell sums the ids that fall into it: how many (the requester's
// less the responder's, mod 2^16), their XOR, and the XOR of a keyed
// checksum of each, which tells a cell holding one id from one holding
// several.
type sketchCell struct {
	count uint16
	ids   uint64
	check uint32
}

// sketchCellLen is a cell's encoding: count, ids, check.
const sketchCellLen = 2 + 8 + 4

// sketchHashes is how many cells each id goes into.
const sketchHashes = 3

// maxSketchCells bounds the cells of all the sketches of one request
// (448 KiB), as maxHeldIDs bounds the ids listed.
const maxSketchCells = 1 << 15

// sketchCells returns the size of a sketch that peels a difference of
// about d ids: with three hashes a table peels with high probability once
// it has some 1.23 cells per id, and small differences need a margin.
func sketchCells(d int) int {
	return d + d/2 + 16
}

func newLogSketch(cells int) *logSketch {
	return &logSketch{cells: make([]sketchCell, cells)}
}

// sketchKey derives the hash key of a request's sketches from its nonce.
func sketchKey(nonce [16]byte) [2]uint64 {
	return [2]uint64{binary.BigEndian.Uint64(nonce[:8]), binary.BigEndian.Uint64(nonce[8:])}
}

// mix64 is a bijective 64-bit mixer (the finalizer of SplitMix64).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// places returns the sketchHashes distinct cells of id. (Cells drawn
// from the whole table, not one from each of three parts: in the small
// tables of a few missed texts, two ids that share all their cells, which
// no table peels, are some five times rarer so.)
func (s *logSketch) places(key [2]uint64, id uint64) [sketchHashes]int {
	var out [sketchHashes]int
	m := uint64(len(s.cells))
	for i, n := uint64(0), 0; n < sketchHashes; i++ {
		c := int(mix64(id^key[0]^(i+1)*0x9e3779b97f4a7c15) % m)
		if !slices.Contains(out[:n], c) {
			out[n] = c
			n++
		}
	}
	return out
}

func sketchCheck(key [2]uint64, id uint64) uint32 {
	return uint32(mix64(id^key[1]) >> 32)
}

// add puts id in the table (sign +1), or takes it out (-1).
func (s *logSketch) add(key [2]uint64, id [8]byte, sign int) {
	v := binary.BigEndian.Uint64(id[:])
	c := sketchCheck(key, v)
	for _, j := range s.places(key, v) {
		cell := &s.cells[j]
		cell.count += uint16(sign)
		cell.ids ^= v
		cell.check ^= c
	}
}

// subtract takes the table of another set, of the same size and key, out
// of this one: what is left is the two sets' difference.
func (s *logSketch) subtract(o *logSketch) {
	for i := range s.cells {
		s.cells[i].count -= o.cells[i].count
		s.cells[i].ids ^= o.cells[i].ids
		s.cells[i].check ^= o.cells[i].check
	}
}

// peel lists the ids of a difference table: those with count +1 (in the
// first set only) and -1 (in the second only). It reports false if the
// table does not peel to empty: the difference is larger than it can
// tell, and what was listed may be incomplete. It empties the table.
func (s *logSketch) peel(key [2]uint64) (plus, minus [][8]byte, ok bool) {
	pure := func(c sketchCell) bool {
		return (c.count == 1 || c.count == 0xffff) && c.check == sketchCheck(key, c.ids)
	}
	queue := make([]int, 0, len(s.cells))
	for i, c := range s.cells {
		if pure(c) {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		c := s.cells[i]
		if !pure(c) {
			continue
		}
		var id [8]byte
		binary.BigEndian.PutUint64(id[:], c.ids)
		sign := 1
		if c.count == 0xffff {
			sign = -1
			minus = append(minus, id)
		} else {
			plus = append(plus, id)
		}
		// Take it out of its cells; one that turns pure is peeled next.
		for _, j := range s.places(key, c.ids) {
			cell := &s.cells[j]
			cell.count -= uint16(sign)
			cell.ids ^= c.ids
			cell.check ^= sketchCheck(key, c.ids)
			if pure(*cell) {
				queue = append(queue, j)
			}
		}
		if len(plus)+len(minus) > len(s.cells) {
			return plus, minus, false // cannot be: a forged table
		}
	}
	for _, c := range s.cells {
		if c != (sketchCell{}) {
			return plus, minus, false
		}
	}
	return plus, minus, true
}

func (s *logSketch) marshal(b *cryptobyte.Builder) {
	for _, c := range s.cells {
		b.AddUint16(c.count)
		b.AddUint64(c.ids)
		b.AddUint32(c.check)
	}
}

var errBadSketch = errors.New("ordering: malformed log sketch")

// parseLogSketch decodes a table's cells: a whole number of cells, at
// least sketchHashes.
func parseLogSketch(data cryptobyte.String) (*logSketch, error) {
	if len(data)%sketchCellLen != 0 || len(data)/sketchCellLen < sketchHashes {
		return nil, errBadSketch
	}
	s := newLogSketch(len(data) / sketchCellLen)
	for i := range s.cells {
		c := &s.cells[i]
		data.ReadUint16(&c.count)
		data.ReadUint64(&c.ids)
		data.ReadUint32(&c.check)
	}
	return s, nil
}

// sketchHeld turns into sketches the lists of held envelopes that a
// sketch says in fewer bytes, given how much the responder's log of the
// epoch may differ from this member's: what peer's latest head counts
// there beyond what this member holds, or, after a sketch of the epoch
// did not peel, four times that sketch's size. A log the head does not speak
// of is listed in full. It returns the cells of each sketch made.
func (l *Loop) sketchHeld(peer string, held []heldLog, key [2]uint64) map[EpochID]int {
	view, ok := l.headViews[peer]
	if !ok {
		return nil
	}
	var made map[EpochID]int
	total := 0
	for i := range held {
		h := &held[i]
		info := l.epochs[h.epoch]
		if info == nil {
			continue
		}
		// A head for a tip this member does not hold counts as off its
		// chain too: after a partition it mostly is. Over 40 seeds of the
		// busy-epoch scenario, trusting its counts made more sketches
		// fail (239 of 1,370, against 191 of 1,270) and held lists 8 %
		// larger.
		d, ok := view.difference(info, l.graph.inSubtree(view.tip, info.node))
		if !ok {
			continue
		}
		m := max(sketchCells(d), l.sketchHint[h.epoch])
		if m*sketchCellLen+1 >= 8*len(h.ids) || total+m > maxSketchCells {
			continue
		}
		// A sketch of the log failed before: the estimate was low, by an
		// unknown factor (after a partition, both sides hold messages the
		// other lacks, which no head count tells), and the larger one may
		// fail too. Unless it is well under the ids' size, the ids go,
		// which cannot fail.
		if l.sketchHint[h.epoch] > 0 && 2*m*sketchCellLen >= 8*len(h.ids) {
			continue
		}
		total += m
		sk := newLogSketch(m)
		for _, id := range h.ids {
			sk.add(key, id, 1)
		}
		h.sketch, h.ids = sk, nil
		if made == nil {
			made = map[EpochID]int{}
		}
		made[h.epoch] = m
	}
	return made
}

// difference estimates by how many envelopes the log of the epoch of
// info held by the member whose head this is differs from this member's:
// how many more its head counts there than this member held when the
// head came (what this member took in since, by gossip, the sender most
// likely took in too), and how many more this member holds now than the
// head counts. It reports false if the head does not tell: the epoch lies
// deeper than the epochs it lists one by one. A low estimate costs a
// round trip: the sketch does not peel, and the next is larger.
//
// A head counts a log only on its own chain (by epoch number) and only
// while it holds messages there: one that does not list this epoch, or
// whose chain does not hold it, held nothing of it when it was made, as
// far as it tells, so everything this member holds there may be missing
// on the other side. (A head that came as an epoch began and was not
// renewed while the epoch filled up, as heads are not on messages, says
// so of the whole epoch.)
func (v headView) difference(info *epochInfo, onChain bool) (int, bool) {
	n := info.node.Number
	mine := info.digest(n).Count
	if !onChain {
		return int(mine), true
	}
	for i, d := range v.logs {
		if d.Epoch == n {
			held := mine
			if i < len(v.held) && v.held[i] > 0 {
				held = min(held, v.held[i])
			}
			// And what this member holds beyond the head's count: the
			// sender may lack it (or have taken it in since).
			return max(0, int(d.Count)-int(held)) + max(0, int(mine)-int(d.Count)), true
		}
	}
	// Not listed, and the head's chain holds the epoch: no messages there
	// when it was made, unless the epoch lies below the ones it lists.
	if len(v.logs) == logDigests && v.logs[len(v.logs)-1].Epoch > n {
		return 0, false
	}
	return int(mine), true
}

// maxSketchHints bounds the epochs a member remembers a larger sketch
// size for; past it, it forgets them all.
const maxSketchHints = 1024

// sketchesFailed makes the next sketches of the logs whose sketches in a
// request did not peel four times as large: the estimate was low, maybe
// by much (the head it came from was old), and each try is a round trip.
func (l *Loop) sketchesFailed(sketched map[EpochID]int) {
	if l.sketchHint == nil || len(l.sketchHint) >= maxSketchHints {
		l.sketchHint = map[EpochID]int{}
	}
	for epoch, m := range sketched {
		l.sketchHint[epoch] = 4 * m
	}
}
