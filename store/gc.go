package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// maxGCRewrites bounds one CollectGarbage call.
const maxGCRewrites = 64

// gcLoop runs CollectGarbage every interval until Close.
func (s *Store) gcLoop(interval time.Duration) {
	defer close(s.gcDone)
	if interval == 0 {
		<-s.gcStop
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.gcStop
		cancel()
	}()
	for {
		select {
		case <-s.gcStop:
			return
		case <-t.C:
			if err := s.CollectGarbage(ctx); err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
				s.log.Warn("store: value log garbage collection", "err", err)
			}
		}
	}
}

// CollectGarbage rewrites value-log files of which at least half is stale
// (overwritten or deleted snapshots), until none is left or ctx ends, and
// removes the old files. The background loop calls it; a node may call it
// at once after deleting much, such as a group. Stale values in the active
// value-log file and in the LSM tree are not reached (see README.md).
func (s *Store) CollectGarbage(ctx context.Context) error {
	for i := 0; i < maxGCRewrites; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.enter(); err != nil {
			return err
		}
		// A rewrite copies up to a value-log file's live values.
		err := s.space.check(0, s.vlogFileSize)
		if err == nil {
			err = s.db.RunValueLogGC(s.gcRatio)
		}
		s.mu.RUnlock()
		switch {
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			return nil
		case err != nil:
			return fmt.Errorf("store: value log GC: %w", err)
		}
		s.log.Debug("store: value log file rewritten")
	}
	return nil
}
