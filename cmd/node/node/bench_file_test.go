package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/cmd/node/api"
)

// BenchmarkFileTransfer sends a file from member 0 to the group and
// measures the time until every receiver has all of it (its last file
// progress event), beside three floors measured in the same run: the same
// bytes over one raw libp2p stream between two default hosts on loopback
// TCP, and between the hosts of two Parley nodes (the hosts a transfer
// uses: Noise first, resource manager, gossip and the rest running), and
// the first with the receiver writing the bytes to a file it syncs at the
// end (floor=libp2p-stream-to-disk: the stream and this machine's disk,
// which a received file goes to). It reports MB/s for all four; the
// heap's and the process's resident memory's peaks during the transfer
// (all nodes are in this process); and, once the transfers are done and
// the stores' value-log GC has run, the store (LSM and value log) at the
// sender and at a receiver in MiB, and
// the disk the store and the files take per byte of file sent
// ("disk/B-receiver": store plus received files; "disk/B-sender": store
// plus the file sent):
//
//	go test -run XXX -bench FileTransfer -benchtime 1x ./cmd/node/node/
//
// Files of 16 MiB by default; PARLEY_BENCH_LARGE=1 adds 100 MiB, and
// PARLEY_BENCH_HUGE=1 1 GiB (the largest file a node sends).
func BenchmarkFileTransfer(b *testing.B) {
	sizes := []int64{16 << 20}
	if os.Getenv("PARLEY_BENCH_LARGE") != "" {
		sizes = append(sizes, 100<<20)
	}
	if os.Getenv("PARLEY_BENCH_HUGE") != "" {
		sizes = append(sizes, 1<<30)
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("floor=libp2p-stream/size=%dMiB", size>>20), func(b *testing.B) { benchRawStream(b, size, false) })
		b.Run(fmt.Sprintf("floor=libp2p-stream-to-disk/size=%dMiB", size>>20), func(b *testing.B) { benchRawStream(b, size, true) })
		b.Run(fmt.Sprintf("floor=parley-hosts/size=%dMiB", size>>20), func(b *testing.B) { benchNodeStream(b, size) })
		for _, members := range []int{2, 5} {
			b.Run(fmt.Sprintf("members=%d/size=%dMiB", members, size>>20), func(b *testing.B) { benchFileTransfer(b, members, size) })
		}
	}
}

func benchFileTransfer(b *testing.B, members int, size int64) {
	ctx := context.Background()
	nodes := make([]*Node, members)
	for i := range nodes {
		nodes[i] = openBenchNode(b, b, fmt.Sprintf("f%d", i))
	}
	for i := range nodes {
		for j := i + 1; j < members; j++ {
			befriend(b, nodes[i], nodes[j])
		}
	}
	g, err := nodes[0].CreateGroup(ctx, "files")
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i < members; i++ {
		if err := nodes[0].Invite(ctx, g.ID, fmt.Sprintf("f%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range nodes {
		eventually(b, time.Minute, n.id.Name+" in the group with all", func() bool {
			gs := groupOf(b, n, "files")
			return !gs.Pending && gs.Members == members
		})
	}
	dir := b.TempDir()
	var done sync.WaitGroup
	var left atomic.Int64
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ids := make([]chan string, members-1) // the file id each receiver waits for
	for i, n := range nodes[1:] {
		events, err := n.Subscribe(subCtx, g.ID)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = make(chan string, 1)
		go func(events <-chan api.Event, id <-chan string) {
			var wantID string
			complete := map[string]bool{}
			for {
				select {
				case wantID = <-id:
				case ev, ok := <-events:
					if !ok {
						return
					}
					if ev.Type == api.EventFile && ev.File != nil && ev.File.Done == ev.File.Total {
						complete[ev.File.ID] = true
					}
				case <-subCtx.Done():
					return
				}
				if wantID != "" && complete[wantID] {
					delete(complete, wantID)
					wantID = ""
					left.Add(-1)
					done.Done()
				}
			}
		}(events, ids[i])
	}
	peak, rss := heapPeak{}, rssPeak{}
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("file-%d.bin", i))
		writeRandomFile(b, path, size)
		done.Add(members - 1)
		left.Store(int64(members - 1))
		stop, stopRSS := peak.watch(), rss.watch()
		b.StartTimer()
		id, err := nodes[0].SendFile(ctx, g.ID, path)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range ids {
			c <- id
		}
		waited := make(chan struct{})
		go func() { done.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(10 * time.Minute):
			b.Fatalf("%d receivers lack the file after 10 minutes", left.Load())
		}
		b.StopTimer()
		stop()
		stopRSS()
		os.Remove(path)
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(peak.max.Load())/(1<<20), "heap-peak-MiB")
	b.ReportMetric(float64(rss.max.Load())/(1<<20), "rss-peak-MiB")
	sent := float64(size * int64(b.N))
	for _, who := range []struct {
		name string
		n    *Node
		// files is what the member keeps of the files besides its
		// store: a receiver the files received; the sender the file
		// it sent (one at a time: the benchmark removes each after it
		// arrived).
		files int64
	}{{"sender", nodes[0], size * int64(b.N)}, {"receiver", nodes[1], dirBytes(nodes[1].files)}} {
		if err := who.n.st.CollectGarbage(ctx); err != nil {
			b.Fatal(err)
		}
		lsm, vlog, _, err := who.n.st.Size()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(lsm+vlog)/(1<<20), "store-MiB-"+who.name)
		b.ReportMetric((float64(lsm+vlog)+float64(who.files))/sent, "disk/B-"+who.name)
	}
}

// dirBytes is the bytes of the files under dir (received files are
// written whole: no holes).
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
		return nil
	})
	return n
}

// rssPeak samples the process's resident memory while a transfer runs.
type rssPeak struct{ max atomic.Int64 }

func (r *rssPeak) watch() (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := residentBytes(); v > r.max.Load() {
				r.max.Store(v)
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// residentBytes is the process's VmRSS (0 where /proc is not).
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// writeRandomFile writes size random bytes at path: ChaCha8 from a
// random seed, several times faster than crypto/rand, whose cost was most
// of a profile of this benchmark (the setup runs with the timer stopped,
// but a profile covers it).
func writeRandomFile(b *testing.B, path string, size int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	var seed [32]byte
	rand.Read(seed[:])
	if _, err := io.CopyN(f, mrand.NewChaCha8(seed), size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// heapPeak samples the live heap while a transfer runs.
type heapPeak struct{ max atomic.Uint64 }

func (h *heapPeak) watch() (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.max.Load() {
				h.max.Store(v)
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// benchRawStream copies size bytes over one libp2p stream between two
// default hosts on loopback TCP: the floor of a file transfer.
func benchRawStream(b *testing.B, size int64, toDisk bool) {
	src, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		b.Fatal(err)
	}
	defer dst.Close()
	benchStream(b, src, dst, size, toDisk)
}

// benchNodeStream is benchRawStream between the hosts of two Parley
// nodes.
func benchNodeStream(b *testing.B, size int64) {
	src, dst := openBenchNode(b, b, "s"), openBenchNode(b, b, "d")
	benchStream(b, src.p2p.Host(), dst.p2p.Host(), size, false)
}

// benchStream sends size bytes over one stream from src to dst, b.N
// times; with toDisk the receiver writes them to a file and syncs it, as
// a node writes a file it receives (the floor of this machine's disk
// beside the stream's).
func benchStream(b *testing.B, src, dst host.Host, size int64, toDisk bool) {
	const proto = "/parley-bench/stream/1"
	got := make(chan int64, 1)
	dir := b.TempDir()
	dst.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		if !toDisk {
			n, _ := io.Copy(io.Discard, s)
			got <- n
			return
		}
		f, err := os.CreateTemp(dir, "recv-*")
		if err != nil {
			b.Error(err)
			got <- -1
			return
		}
		defer os.Remove(f.Name())
		n, err := io.Copy(f, s)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Error(err)
		}
		got <- n
	})
	ctx := context.Background()
	if err := src.Connect(ctx, peer.AddrInfo{ID: dst.ID(), Addrs: dst.Addrs()}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	rand.Read(buf)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		s, err := src.NewStream(ctx, dst.ID(), proto)
		if err != nil {
			b.Fatal(err)
		}
		for sent := int64(0); sent < size; sent += int64(len(buf)) {
			if _, err := s.Write(buf[:min(int64(len(buf)), size-sent)]); err != nil {
				b.Fatal(err)
			}
		}
		s.CloseWrite()
		if n := <-got; n != size {
			b.Fatalf("the receiver got %d bytes of %d", n, size)
		}
		s.Close()
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
}
