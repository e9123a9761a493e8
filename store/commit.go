package store

import (
	"context"
	"errors"
	"sync"
)

// Group commit. Badger syncs its write-ahead log once per transaction,
// even when it writes several transactions at once, so Writes made at the
// same moment would each cost an fsync. Instead, Writes queue: the first
// in the queue commits its own batches and those of every Write queued
// behind it (up to maxCommitGroup) in one transaction, one fsync, then
// hands the queue to the next. An idle store commits a Write at once;
// what queues during one commit makes the next.
//
// Each Write stays atomic and is acknowledged only once its transaction is
// durable. A group whose transaction fails on one Write's ops (a
// duplicate log id, a missing entry, too large) is committed again one
// Write at a time, so that each gets its own outcome.

// maxCommitGroup bounds the Writes one transaction carries.
const maxCommitGroup = 128

// commitQueue is the queue of Writes waiting to commit; the one at its
// front commits.
type commitQueue struct {
	mu    sync.Mutex
	queue []*commitReq
}

// commitReq is one Write waiting in the queue.
type commitReq struct {
	ctx     context.Context
	batches []*Batch
	ops     int
	err     error
	// done is set, before wake, once the Write was committed by the Write
	// in front of it; wake without done means it is now at the front.
	done bool
	wake chan struct{}
}

// commit queues r and returns its outcome once committed, by r itself if
// it comes to the front, or by the Write in front of it.
func (q *commitQueue) commit(s *Store, r *commitReq) error {
	r.wake = make(chan struct{}, 1)
	q.mu.Lock()
	q.queue = append(q.queue, r)
	front := len(q.queue) == 1
	q.mu.Unlock()
	if !front {
		<-r.wake
		if r.done {
			return r.err
		}
	}
	q.mu.Lock()
	group := append([]*commitReq(nil), q.queue[:min(len(q.queue), maxCommitGroup)]...)
	q.mu.Unlock()

	s.commitGroup(group)

	q.mu.Lock()
	q.queue = q.queue[len(group):]
	var next *commitReq
	if len(q.queue) > 0 {
		next = q.queue[0]
	} else {
		q.queue = nil
	}
	q.mu.Unlock()
	for _, o := range group[1:] {
		o.done = true
		o.wake <- struct{}{}
	}
	if next != nil {
		next.wake <- struct{}{}
	}
	return r.err
}

// commitGroup commits the Writes of group, setting each one's err.
func (s *Store) commitGroup(group []*commitReq) {
	live := group[:0:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		r := live[0]
		r.err = s.writeBatches(r.ctx, r.batches, r.ops)
		return
	}
	var batches []*Batch
	n := 0
	for _, r := range live {
		batches = append(batches, r.batches...)
		n += r.ops
	}
	// The group's transaction is bound to no one caller's context.
	err := s.writeBatches(context.Background(), batches, n)
	if err != nil && ownFailure(err) {
		for _, r := range live {
			r.err = s.writeBatches(r.ctx, r.batches, r.ops)
		}
		return
	}
	for _, r := range live {
		r.err = err
	}
}

// ownFailure reports whether err may come from the ops of one Write of a
// group rather than from the store.
func ownFailure(err error) bool {
	return errors.Is(err, ErrDuplicate) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInvalidArgument) ||
		errors.Is(err, ErrNoSpace) // the group's bytes may not fit where one Write's do
}
