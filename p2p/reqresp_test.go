package p2p

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func echo(_ context.Context, _ peer.ID, req []byte, w ResponseWriter) error {
	return w.Write(req)
}

func TestRequestGetsResponse(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	if err := b.Handle("echo/1", echo); err != nil {
		t.Fatal(err)
	}
	connect(t, a, b)
	got, err := a.Request(context.Background(), b.ID(), "echo/1", []byte("ping"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "ping" {
		t.Errorf("got %q, want ping", got)
	}
}

func TestHandlerRegisteredBeforeStartServes(t *testing.T) {
	b, err := New(newKey(t), testOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("echo/1", echo); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a := startNode(t, nil)
	connect(t, a, b)
	if _, err := a.Request(context.Background(), b.ID(), "echo/1", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestLargePayloadTravelsOverDirectStream(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil, WithListenAddrs(quic4))
	a2 := startNode(t, nil, WithListenAddrs(quic4))
	var got []byte
	var mu sync.Mutex
	b.Handle("welcome/1", func(_ context.Context, _ peer.ID, req []byte, w ResponseWriter) error {
		mu.Lock()
		got = req
		mu.Unlock()
		return w.Write([]byte("ok"))
	})
	welcome := bytes.Repeat([]byte("tree"), 3<<20/4) // 3 MiB, more than gossip carries
	for _, from := range []*Node{a, a2} {
		connect(t, from, b)
		resp, err := from.Request(context.Background(), b.ID(), "welcome/1", welcome)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if string(resp) != "ok" || !bytes.Equal(got, welcome) {
			t.Errorf("payload of %d bytes arrived as %d bytes, response %q", len(welcome), len(got), resp)
		}
		mu.Unlock()
	}
}

func TestRequestEachStreamsFramesInOrder(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	b.Handle("history/1", func(_ context.Context, _ peer.ID, req []byte, w ResponseWriter) error {
		for i := range 100 {
			if err := w.Write(fmt.Appendf(nil, "%s-%d", req, i)); err != nil {
				return err
			}
		}
		return nil
	})
	connect(t, a, b)
	var got []string
	err := a.RequestEach(context.Background(), b.ID(), "history/1", []byte("epoch"), func(f []byte) error {
		got = append(got, string(f))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 || got[0] != "epoch-0" || got[99] != "epoch-99" {
		t.Errorf("got %d frames (%v...), want 100 in order", len(got), got[:min(3, len(got))])
	}
	if _, err := a.Request(context.Background(), b.ID(), "history/1", []byte("x")); !errors.Is(err, ErrExtraResponse) {
		t.Errorf("Request on a multi-frame response: got %v, want ErrExtraResponse", err)
	}
}

// TestRequestEachReusedReadsFramesIntoOneBuffer: the frames come whole
// and in order, frames of different sizes among them, and a frame no
// larger than the largest before it is read into the same memory.
func TestRequestEachReusedReadsFramesIntoOneBuffer(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	frame := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000+(i%3)*500) }
	b.Handle("chunks/1", func(_ context.Context, _ peer.ID, _ []byte, w ResponseWriter) error {
		for i := range 50 {
			if err := w.Write(frame(i)); err != nil {
				return err
			}
		}
		return nil
	})
	connect(t, a, b)
	var first *byte
	i, same := 0, 0
	err := a.RequestEachReused(context.Background(), b.ID(), "chunks/1", nil, func(f []byte) error {
		if !bytes.Equal(f, frame(i)) {
			t.Errorf("frame %d: %d bytes of %d, not as sent", i, len(f), len(frame(i)))
		}
		if i == 2 {
			first = &f[0] // the largest size, reached on the third frame
		} else if i > 2 && &f[0] == first {
			same++
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != 50 {
		t.Errorf("%d frames, want 50", i)
	}
	if same != 47 {
		t.Errorf("%d of the 47 frames after the largest were read into its buffer", same)
	}
}

func TestRequestReportsHandlerError(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	b.Handle("fail/1", func(context.Context, peer.ID, []byte, ResponseWriter) error {
		return errors.New("no key package left")
	})
	b.Handle("empty/1", func(context.Context, peer.ID, []byte, ResponseWriter) error { return nil })
	connect(t, a, b)
	_, err := a.Request(context.Background(), b.ID(), "fail/1", nil)
	var remote *RemoteError
	if !errors.As(err, &remote) || remote.Message != "no key package left" {
		t.Errorf("got %v, want RemoteError with the handler's text", err)
	}
	if _, err := a.Request(context.Background(), b.ID(), "empty/1", nil); !errors.Is(err, ErrNoResponse) {
		t.Errorf("got %v, want ErrNoResponse", err)
	}
}

func TestRequestTimesOut(t *testing.T) {
	limits := DefaultStreamLimits
	limits.Timeout = 500 * time.Millisecond
	a, b := startNode(t, nil, WithStreamLimits(limits)), startNode(t, nil)
	abandoned := make(chan struct{}, 2)
	b.Handle("slow/1", func(ctx context.Context, _ peer.ID, _ []byte, _ ResponseWriter) error {
		<-ctx.Done() // b's own timeout is 30s: this is the requester giving up
		abandoned <- struct{}{}
		return nil
	})
	connect(t, a, b)
	start := time.Now()
	_, err := a.Request(context.Background(), b.ID(), "slow/1", []byte("x"))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timed out after %v, want about 500ms", d)
	}
	// The caller's own deadline applies too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := a.Request(ctx, b.ID(), "slow/1", []byte("x")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	for range 2 {
		select {
		case <-abandoned:
		case <-time.After(waitShort):
			t.Fatal("handler not cancelled when the requester gave up")
		}
	}
}

func TestSlowHandlerGetsTimeoutError(t *testing.T) {
	limits := DefaultStreamLimits
	limits.Timeout = 300 * time.Millisecond
	a, b := startNode(t, nil), startNode(t, nil, WithStreamLimits(limits))
	b.Handle("slow/1", func(ctx context.Context, _ peer.ID, _ []byte, _ ResponseWriter) error {
		<-ctx.Done()
		return ctx.Err()
	})
	connect(t, a, b)
	_, err := a.Request(context.Background(), b.ID(), "slow/1", nil)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
}

func TestOversizeFramesAreRefused(t *testing.T) {
	small := DefaultStreamLimits
	small.MaxFrame = 1024
	small.MaxStream = 4096
	a := startNode(t, nil, WithStreamLimits(small))
	b := startNode(t, nil, WithStreamLimits(small))
	big := startNode(t, nil) // default limits, 8 MiB frames
	for _, n := range []*Node{a, b, big} {
		n.Handle("echo/1", echo)
		n.Handle("big/1", func(_ context.Context, _ peer.ID, _ []byte, w ResponseWriter) error {
			return w.Write(make([]byte, 2048))
		})
		n.Handle("many/1", func(_ context.Context, _ peer.ID, _ []byte, w ResponseWriter) error {
			for range 10 {
				if err := w.Write(make([]byte, 1000)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	connect(t, a, b)
	connect(t, a, big)
	connect(t, big, b)
	ctx := context.Background()

	t.Run("request over own limit", func(t *testing.T) {
		if _, err := a.Request(ctx, b.ID(), "echo/1", make([]byte, 1025)); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("got %v, want ErrFrameTooLarge", err)
		}
	})
	t.Run("request over responder's limit", func(t *testing.T) {
		_, err := big.Request(ctx, b.ID(), "echo/1", make([]byte, 4096))
		var remote *RemoteError
		if !errors.Is(err, ErrFrameTooLarge) || !errors.As(err, &remote) {
			t.Errorf("got %v, want a remote ErrFrameTooLarge", err)
		}
	})
	t.Run("response over requester's frame limit", func(t *testing.T) {
		if _, err := a.Request(ctx, big.ID(), "big/1", nil); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("got %v, want ErrFrameTooLarge", err)
		}
	})
	t.Run("response over requester's stream limit", func(t *testing.T) {
		err := a.RequestEach(ctx, big.ID(), "many/1", nil, func([]byte) error { return nil })
		if !errors.Is(err, ErrStreamTooLarge) {
			t.Errorf("got %v, want ErrStreamTooLarge", err)
		}
	})
	t.Run("responder's own frame limit", func(t *testing.T) {
		_, err := a.Request(ctx, b.ID(), "big/1", nil)
		var remote *RemoteError
		if !errors.As(err, &remote) || remote.Code != codeHandler {
			t.Errorf("got %v, want the handler's ErrFrameTooLarge as a remote error", err)
		}
	})
	t.Run("declared length of 1 GiB", func(t *testing.T) {
		s, err := big.host.NewStream(ctx, b.ID(), protocolPrefix+"echo/1")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.Write(appendFrameHeader(nil, 1<<30))
		s.CloseWrite()
		err = readResponse(bufio.NewReader(s), DefaultStreamLimits, false, func([]byte) error { return nil })
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("got %v, want a remote ErrFrameTooLarge", err)
		}
	})
}

func TestPerPeerConcurrencyLimit(t *testing.T) {
	limits := DefaultStreamLimits
	limits.PerPeer = 2
	a, b, c := startNode(t, nil), startNode(t, nil, WithStreamLimits(limits)), startNode(t, nil)
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	b.Handle("hold/1", func(ctx context.Context, _ peer.ID, _ []byte, w ResponseWriter) error {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return w.Write([]byte("done"))
	})
	connect(t, a, b)
	connect(t, c, b)
	ctx := context.Background()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := a.Request(ctx, b.ID(), "hold/1", nil)
			errs <- err
		}()
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(waitShort):
			t.Fatal("handlers did not start")
		}
	}
	if _, err := a.Request(ctx, b.ID(), "hold/1", nil); !errors.Is(err, ErrPeerBusy) {
		t.Errorf("third concurrent request: got %v, want ErrPeerBusy", err)
	}
	// Another peer is not affected by a's requests.
	go func() {
		<-entered
	}()
	cerr := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, b.ID(), "hold/1", nil)
		cerr <- err
	}()
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("held request: %v", err)
		}
	}
	if err := <-cerr; err != nil {
		t.Errorf("other peer's request: %v", err)
	}
}

func TestRequestForUnknownProtocolFails(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	connect(t, a, b)
	if _, err := a.Request(context.Background(), b.ID(), "nothing/1", nil); !errors.Is(err, ErrNoHandler) {
		t.Errorf("got %v, want ErrNoHandler", err)
	}
}

func TestBadProtocolNamesAreRefused(t *testing.T) {
	a := startNode(t, nil)
	for _, name := range []string{"", "/abs", "has space"} {
		if err := a.Handle(name, echo); !errors.Is(err, ErrBadProtocol) {
			t.Errorf("Handle(%q): got %v, want ErrBadProtocol", name, err)
		}
	}
}
