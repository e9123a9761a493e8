package api_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// sentinels are the errors that cross the API as codes.
var sentinels = []struct {
	code string
	err  error
}{
	{"not_found", api.ErrNotFound},
	{"ambiguous", api.ErrAmbiguous},
	{"bad_code", api.ErrBadCode},
	{"not_member", api.ErrNotMember},
	{"damaged", api.ErrDamaged},
	{"exists", api.ErrExists},
	{"invalid", api.ErrInvalid},
	{"unavailable", api.ErrUnavailable},
	{"unauthorized", api.ErrUnauthorized},
	{"bad_request", api.ErrBadRequest},
	{"unknown_method", api.ErrUnknownMethod},
	{"canceled", context.Canceled},
	{"deadline_exceeded", context.DeadlineExceeded},
}

func TestErrorCodesAreStable(t *testing.T) {
	for _, s := range sentinels {
		if got := api.ErrorCode(fmt.Errorf("context: %w", s.err)); got != s.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", s.err, got, s.code)
		}
		if got := (&api.Error{Code: s.code}).Unwrap(); got != s.err {
			t.Errorf("Error{%q}.Unwrap() = %v, want %v", s.code, got, s.err)
		}
	}
	if got := api.ErrorCode(errors.New("disk on fire")); got != api.CodeInternal {
		t.Errorf("ErrorCode(other) = %q, want %q", got, api.CodeInternal)
	}
	if got := (&api.Error{Code: "from_the_future"}).Unwrap(); got != nil {
		t.Errorf("unknown code unwraps to %v, want nil", got)
	}
}

// TestEveryErrorCodeCrossesTheSocket has the Backend return each
// sentinel and checks the client returns an error that matches it, with
// the Backend's message, over both transports.
func TestEveryErrorCodeCrossesTheSocket(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			b, c := serveFake(t, tr)
			ctx := context.Background()
			for _, s := range sentinels {
				want := fmt.Errorf("group %q: %w", "friends", s.err)
				b.Fail = func(string) error { return want }
				_, err := c.Groups(ctx)
				if !errors.Is(err, s.err) {
					t.Errorf("%s: got %v, want an error matching %v", s.code, err, s.err)
				}
				var apiErr *api.Error
				if !errors.As(err, &apiErr) || apiErr.Code != s.code || apiErr.Message != want.Error() {
					t.Errorf("%s: got %#v, want code %q and message %q", s.code, err, s.code, want.Error())
				}
			}
			b.Fail = func(string) error { return errors.New("disk on fire") }
			_, err := c.Groups(ctx)
			var apiErr *api.Error
			if !errors.As(err, &apiErr) || apiErr.Code != api.CodeInternal || err.Error() != "disk on fire" {
				t.Errorf("other error: got %#v, want code internal", err)
			}
			for _, s := range sentinels {
				if errors.Is(err, s.err) {
					t.Errorf("internal error matches %v", s.err)
				}
			}
		})
	}
}

// TestBackendPanicIsAnInternalError checks a panicking Backend costs one
// request, not the daemon.
func TestBackendPanicIsAnInternalError(t *testing.T) {
	b, c := serveFake(t, transports[0])
	b.Fail = func(method string) error {
		if method == api.MethodGroups {
			panic("boom")
		}
		return nil
	}
	_, err := c.Groups(context.Background())
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeInternal {
		t.Fatalf("got %v, want an internal error", err)
	}
	if _, err := c.Identity(context.Background()); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}
