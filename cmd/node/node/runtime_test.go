package node

import (
	"runtime"
	"sync"
	"testing"
)

// TestStatusCountsGoroutinesAndHeap: the runtime figures that status
// reports follow what the process does: 100 more goroutines and 64 MiB
// held live show in them.
func TestStatusCountsGoroutinesAndHeap(t *testing.T) {
	runtime.GC()
	before, heapBefore := runtimeFigures()
	if before < 1 || heapBefore == 0 {
		t.Fatalf("runtimeFigures() = %d goroutines, %d bytes of heap; want both above zero", before, heapBefore)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { <-stop })
	}
	held := make([]byte, 64<<20)
	held[len(held)-1] = 1
	runtime.GC() // the live heap is measured by a collection
	during, heapDuring := runtimeFigures()
	close(stop)
	wg.Wait()
	if during < before+100 {
		t.Errorf("goroutines: %d with 100 more running, %d before", during, before)
	}
	if heapDuring < heapBefore+32<<20 { // what other tests' nodes free meanwhile is noise
		t.Errorf("heap: %d bytes holding 64 MiB more, %d before", heapDuring, heapBefore)
	}
	runtime.KeepAlive(held)
}
