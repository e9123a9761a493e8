package node

import "runtime/metrics"

// runtimeSamples are the Go runtime figures that status reports, read
// with runtime/metrics, which (unlike runtime.ReadMemStats) does not stop
// the world.
var runtimeSamples = []string{"/sched/goroutines:goroutines", "/gc/heap/live:bytes"}

// runtimeFigures returns the goroutines running and the bytes of heap
// live after the last garbage collection.
func runtimeFigures() (goroutines int, heap uint64) {
	s := make([]metrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		goroutines = int(s[0].Value.Uint64())
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		heap = s[1].Value.Uint64()
	}
	return goroutines, heap
}
