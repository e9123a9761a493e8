package api_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestConcurrentRequestsShareAConnection runs many requests at once on
// one client and checks each gets its own answer.
func TestConcurrentRequestsShareAConnection(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			_, c := serveFake(t, tr)
			ctx := context.Background()
			const workers, each = 16, 25
			for w := range workers {
				if _, err := c.CreateGroup(ctx, fmt.Sprintf("g%d", w)); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					group := fmt.Sprintf("g%d", w)
					for i := range each {
						text := fmt.Sprintf("%s message %d", group, i)
						if _, err := c.Send(ctx, group, text); err != nil {
							errs <- err
							return
						}
						msgs, err := c.Read(ctx, group, uint64(i), 1)
						if err != nil {
							errs <- err
							return
						}
						if len(msgs) != 1 || msgs[0].Text != text {
							errs <- fmt.Errorf("%s: read back %+v, want %q", group, msgs, text)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestSlowRequestDoesNotBlockOthers checks responses come back out of
// order: a request stuck in the Backend leaves the connection usable.
func TestSlowRequestDoesNotBlockOthers(t *testing.T) {
	b, c := serveFake(t, transports[0])
	release := make(chan struct{})
	entered := make(chan struct{})
	b.Fail = func(method string) error {
		if method == api.MethodStatus {
			close(entered)
			<-release
		}
		return nil
	}
	ctx := context.Background()
	slow := make(chan error, 1)
	go func() {
		_, err := c.Status(ctx)
		slow <- err
	}()
	<-entered
	for range 10 {
		if _, err := c.Identity(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("the slow request: %v", err)
	}
}

// TestCallerGivesUp checks a canceled call returns at once and the
// connection stays usable.
func TestCallerGivesUp(t *testing.T) {
	b, c := serveFake(t, transports[0])
	release := make(chan struct{})
	b.Fail = func(method string) error {
		if method == api.MethodStatus {
			<-release
		}
		return nil
	}
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Status(ctx)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if _, err := c.Identity(context.Background()); err != nil {
		t.Fatalf("after a canceled call: %v", err)
	}
}
