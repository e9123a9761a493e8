package api_test

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// blockStatus makes b's Status wait for release; entered is closed when
// the first call arrives.
func blockStatus(b *apitest.Backend) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	b.Fail = func(method string) error {
		if method == api.MethodStatus {
			close(entered)
			<-release
		}
		return nil
	}
	return entered, release
}

func TestShutdownLetsRunningRequestsAnswer(t *testing.T) {
	b := apitest.New()
	s, path := serveUnix(t, b)
	c, err := api.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	events, err := c.Subscribe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := blockStatus(b)
	answered := make(chan error, 1)
	go func() {
		_, err := c.Status(context.Background())
		answered <- err
	}()
	<-entered

	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(context.Background()) }()
	// The event stream ends at once; the request is still running.
	for range events {
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned %v before the running request answered", err)
	default:
	}
	close(release)
	if err := <-answered; err != nil {
		t.Errorf("the running request: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := c.Identity(context.Background()); !errors.Is(err, api.ErrClosed) {
		t.Errorf("a call after Shutdown: got %v, want ErrClosed", err)
	}
	if _, err := api.Dial(context.Background(), path); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("Dial after Shutdown: got %v, want ErrNotRunning", err)
	}
}

func TestShutdownCancelsWhenItsContextEnds(t *testing.T) {
	b := apitest.New()
	s, path := serveUnix(t, b)
	c, err := api.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	entered, release := blockStatus(b)
	defer close(release)
	answered := make(chan error, 1)
	go func() {
		_, err := c.Status(context.Background())
		answered <- err
	}()
	<-entered
	// The fake ignores cancellation, as a stuck Backend would; Shutdown
	// must return anyway once the connections are closed and the
	// request ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(ctx) }()
	if err := <-answered; !errors.Is(err, api.ErrClosed) {
		t.Errorf("the running request: got %v, want ErrClosed", err)
	}
	release <- struct{}{}
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: got %v, want context.Canceled", err)
	}
}

func TestListenAfterCloseFails(t *testing.T) {
	s := api.NewServer(apitest.New(), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.ListenUnix(t.TempDir() + "/p.sock"); err == nil {
		t.Error("ListenUnix after Close succeeded")
	}
}
