package ratchettree

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// forEach calls f(i) for i in [0, n) on up to GOMAXPROCS goroutines, each
// taking the next index, and returns the error of the lowest index that
// failed. It is for independent public-key operations (an UpdatePath's
// HPKE encryptions, its node key pairs), each costing tens of
// microseconds: far more than a goroutine.
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
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errs[i] = f(i)
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
