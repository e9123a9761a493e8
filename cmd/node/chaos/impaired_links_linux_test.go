package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestImpairedLinksLoseAndThrottle checks the impairment that TestChaos
// uses, on two namespaces on the bridge and without daemons: a link set
// to lose every frame carries nothing, and everything once restored; one
// set to lose 30% loses about that; one set slow carries a few MB
// several times slower than before, both ways, and fast again once
// restored. Run as root, like TestChaos (a few seconds):
//
//	sudo PARLEY_CHAOS=1 go test -count=1 -run TestImpairedLinksLoseAndThrottle -v ./cmd/node/chaos/
func TestImpairedLinksLoseAndThrottle(t *testing.T) {
	skipUnlessChaos(t, "link impairment test")
	nw := newNetwork(t, fmt.Sprintf("parley-imp-%d", os.Getpid()), 2)
	im := newImpairer(t, nw, link{})
	t.Logf("links impaired by %s", im.mechanism())
	a, b := 0, 1 // the client's and the server's namespaces; b's link is impaired
	srv := newSink(t, nw.nodes[b], nw.addrs[b])

	if err := exchange(nw.nodes[a], srv.tcp); err != nil {
		t.Fatalf("before any impairment: %v", err)
	}
	if err := im.set(b, link{loss: 10000}); err != nil {
		t.Fatal(err)
	}
	if err := exchange(nw.nodes[a], srv.tcp); err == nil {
		t.Fatalf("an exchange went through a link that loses every frame")
	} else {
		t.Logf("with 100%% loss: %v", err)
	}
	if err := im.set(b, link{}); err != nil {
		t.Fatal(err)
	}
	if err := exchange(nw.nodes[a], srv.tcp); err != nil {
		t.Fatalf("after the link was restored: %v", err)
	}

	// Datagrams cross b's link once, so about 30% of them are lost. The
	// margin is wide: 2,000 draws stray from 30% by 1% (one standard
	// deviation), and a receive buffer that overflows loses more.
	if err := im.set(b, link{loss: 3000}); err != nil {
		t.Fatal(err)
	}
	const datagrams = 2000
	got, err := srv.datagrams(nw.nodes[a], datagrams)
	if err != nil {
		t.Fatal(err)
	}
	if lost := float64(datagrams-got) / datagrams; lost < 0.15 || lost > 0.5 {
		t.Errorf("with 30%% loss, %d of %d datagrams arrived: %.0f%% lost, want 15%% to 50%%", got, datagrams, 100*lost)
	} else {
		t.Logf("with 30%% loss, %.1f%% of %d datagrams lost", 100*lost, datagrams)
	}
	if counted, err := im.lost(); err != nil {
		t.Error(err)
	} else if counted != nil && counted[b] == 0 {
		t.Errorf("nftables counted no frame dropped on the lossy link")
	}
	if err := im.set(b, link{}); err != nil {
		t.Fatal(err)
	}

	// A slow link: 3 MB at 10 Mbit/s take about 2.5 s, and a few tens of
	// milliseconds unthrottled on a veth, so a ratio of 3 leaves a wide
	// margin for a busy machine.
	const size = 3 << 20
	fast, err := srv.transfer(nw.nodes[a], size)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.set(b, link{rate: 10000}); err != nil {
		t.Fatal(err)
	}
	var slowest time.Duration
	for _, dir := range []struct {
		name string
		f    func() (time.Duration, error)
	}{
		{"towards the slow member", func() (time.Duration, error) { return srv.transfer(nw.nodes[a], size) }},
		{"from the slow member", func() (time.Duration, error) { return srv.fetch(nw.nodes[a], size) }},
	} {
		slow, err := dir.f()
		if err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		t.Logf("3 MB %s at 10 Mbit/s: %v (%v unthrottled)", dir.name, slow.Round(time.Millisecond), fast.Round(time.Millisecond))
		if slow < 3*fast {
			t.Errorf("3 MB %s took %v at 10 Mbit/s and %v unthrottled: want at least three times as long", dir.name, slow, fast)
		}
		slowest = max(slowest, slow)
	}
	if err := im.set(b, link{}); err != nil {
		t.Fatal(err)
	}
	again, err := srv.transfer(nw.nodes[a], size)
	if err != nil {
		t.Fatal(err)
	}
	if 3*again > slowest {
		t.Errorf("3 MB took %v once the link was restored and %v at 10 Mbit/s: the link is still slow", again, slowest)
	}
}

// sink is a TCP and a UDP server in a namespace. Over TCP it echoes a
// line, swallows what a client sends and answers with one byte, or sends
// what a client asks for; it counts the datagrams it receives.
type sink struct {
	t   *testing.T
	tcp string // its TCP address
	udp string // its UDP address
	n   atomic.Int64
}

func newSink(t *testing.T, ns, addr string) *sink {
	t.Helper()
	s := &sink{t: t}
	var ln net.Listener
	var pc net.PacketConn
	err := inNetns(ns, func() error {
		var err error
		if ln, err = net.Listen("tcp", addr+":0"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", addr+":0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	s.tcp, s.udp = ln.Addr().String(), pc.LocalAddr().String()
	// The datagrams come faster than a busy machine may read them: a
	// buffer that holds them all (forced past net.core.rmem_max, as
	// root) keeps the socket from dropping some on top of the link.
	if err := forceReadBuffer(pc.(*net.UDPConn), 8<<20); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			s.n.Add(1)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

// serve reads a request: "ping" is echoed as "pong"; "sink" is followed
// by bytes to swallow until the client closes its side, and answered
// with one byte; "send N" is answered with N bytes. Its errors are the
// client's to see: a connection closed early.
func (s *sink) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	var n int64
	switch req := strings.Fields(line); {
	case len(req) == 1 && req[0] == "ping":
		io.WriteString(c, "pong\n")
	case len(req) == 1 && req[0] == "sink":
		if _, err := io.Copy(io.Discard, r); err == nil {
			c.Write([]byte{1})
		}
	case len(req) == 2 && req[0] == "send":
		if _, err := fmt.Sscan(req[1], &n); err == nil {
			io.CopyN(c, zeros{}, n)
		}
	}
}

// forceReadBuffer sets a socket's receive buffer with SO_RCVBUFFORCE,
// which root may set past net.core.rmem_max.
func forceReadBuffer(c *net.UDPConn, size int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_RCVBUFFORCE: %w", serr)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// dial connects from namespace ns to addr.
func dial(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// exchange connects from namespace ns to addr and has a line echoed,
// within 3 s.
func exchange(ns, addr string) error {
	c, err := dial(ns, addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "pong\n" {
		return fmt.Errorf("echo: got %q, want %q", buf, "pong\n")
	}
	return nil
}

// transfer sends size bytes from namespace ns to the sink and returns how
// long they took to arrive.
func (s *sink) transfer(ns string, size int64) (time.Duration, error) {
	start := time.Now()
	c, err := dial(ns, s.tcp, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, "sink\n"); err != nil {
		return 0, err
	}
	if _, err := io.CopyN(c, zeros{}, size); err != nil {
		return 0, err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return 0, fmt.Errorf("waiting for the sink to have %d bytes: %w", size, err)
	}
	return time.Since(start), nil
}

// fetch has the sink send size bytes to namespace ns and returns how long
// they took to arrive.
func (s *sink) fetch(ns string, size int64) (time.Duration, error) {
	start := time.Now()
	c, err := dial(ns, s.tcp, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintf(c, "send %d\n", size); err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, fmt.Errorf("fetched %d bytes, want %d", n, size)
	}
	return time.Since(start), nil
}

// datagrams sends n datagrams from namespace ns to the sink and returns
// how many arrived: it waits until none has arrived for half a second.
func (s *sink) datagrams(ns string, n int) (int, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		var err error
		c, err = net.Dial("udp", s.udp)
		return err
	})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	before := s.n.Load()
	payload := make([]byte, 32)
	for i := range n {
		if _, err := c.Write(payload); err != nil {
			// A lost ARP answer can leave the neighbour unresolved
			// for a moment; the datagram counts as lost.
			if !errors.Is(err, unix.EHOSTUNREACH) {
				return 0, fmt.Errorf("datagram %d: %w", i, err)
			}
		}
	}
	last, quiet := s.n.Load(), time.Now()
	if !waitUntil(10*time.Second, func() bool {
		if now := s.n.Load(); now != last {
			last, quiet = now, time.Now()
		}
		return time.Since(quiet) >= 500*time.Millisecond
	}) {
		return 0, fmt.Errorf("datagrams still arriving 10s after the last of %d was sent", n)
	}
	return int(last - before), nil
}

// inNetns runs f on a thread of its own in the network namespace ns
// (made by ip netns): the sockets f makes belong to ns, wherever they are
// used afterwards. The thread is never unlocked, so that it ends with f's
// goroutine instead of going back to the Go scheduler in ns.
func inNetns(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- fmt.Errorf("opening namespace %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		done <- f()
	}()
	return <-done
}
