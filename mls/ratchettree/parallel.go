package ratchettree

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// forEach calls f(i) for i in [0, n) on up to GOMAXPROCS goroutines, each
// taking the next index, until one fails, and returns the error of the
// lowest index that failed. It is for independent public-key operations
// (an UpdatePath's HPKE encryptions and node key pairs, a tree's leaf
// signatures), each costing tens of microseconds: far more than a
// goroutine.
func forEach(n int, f func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = f(i); errs[i] != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
