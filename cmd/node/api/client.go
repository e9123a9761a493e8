package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// A Client is a connection to a parley daemon. Its methods are those of
// Backend and may be called from several goroutines at once: requests go
// out on one connection and their responses are matched by id. Subscribe
// opens a connection of its own for each event stream.
type Client struct {
	// dial opens a new connection, authenticated if need be.
	dial func(ctx context.Context) (net.Conn, *bufio.Reader, error)

	conn   net.Conn
	writes chan []byte

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan response
	err     error         // why the connection ended; set once
	done    chan struct{} // closed when it ends
}

var _ Backend = (*Client)(nil)

// Dial connects to the daemon's unix socket at socketPath. If no daemon
// answers there, the error wraps ErrNotRunning and says how to start one.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	return newClient(ctx, func(ctx context.Context) (net.Conn, *bufio.Reader, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "unix", socketPath)
		if err != nil {
			return nil, nil, dialError(socketPath, "socket", err)
		}
		return nc, newReader(nc), nil
	})
}

// DialTCP connects to the daemon's TCP listener at addr, a loopback
// address, and authenticates with token. A wrong token gives an error
// wrapping ErrUnauthorized.
func DialTCP(ctx context.Context, addr, token string) (*Client, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	return newClient(ctx, func(ctx context.Context) (net.Conn, *bufio.Reader, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, dialError(addr, "listener", err)
		}
		r := newReader(nc)
		if _, err := roundTrip(ctx, nc, r, MethodAuth, authParams{Token: token}); err != nil {
			nc.Close()
			return nil, nil, err
		}
		return nc, r, nil
	})
}

func newReader(nc net.Conn) *bufio.Reader { return bufio.NewReaderSize(nc, 64<<10) }

// dialError explains a failed dial; what is "socket" or "listener".
func dialError(addr, what string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%w (no %s at %s); start it with 'parley run'", ErrNotRunning, what, addr)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (nothing answers on %s); start it with 'parley run'", ErrNotRunning, addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot connect to the parley daemon at %s: permission denied (only the user running the daemon can)", addr)
	}
	return fmt.Errorf("connecting to the parley daemon at %s: %w", addr, err)
}

func newClient(ctx context.Context, dial func(context.Context) (net.Conn, *bufio.Reader, error)) (*Client, error) {
	nc, r, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	c := &Client{
		dial:    dial,
		conn:    nc,
		writes:  make(chan []byte),
		pending: make(map[uint64]chan response),
		done:    make(chan struct{}),
	}
	go c.readLoop(r)
	go c.writeLoop()
	return c, nil
}

// Close closes the connection; calls in progress return ErrClosed.
// Event streams started by Subscribe end too.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	return nil
}

// fail ends the connection with err, once.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	c.conn.Close()
}

// closedError returns why the connection ended.
func (c *Client) closedError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// readLoop hands each response to the call waiting for it.
func (c *Client) readLoop(r *bufio.Reader) {
	for {
		line, err := readLine(r, maxResponseSize)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				c.fail(ErrClosed)
			} else {
				c.fail(fmt.Errorf("%w: %w", ErrClosed, err))
			}
			return
		}
		var in incoming
		if err := json.Unmarshal(line, &in); err != nil {
			c.fail(fmt.Errorf("%w: malformed response from the daemon: %s", ErrClosed, jsonProblem(err)))
			return
		}
		if in.Event != nil {
			continue // not asked for on this connection
		}
		c.mu.Lock()
		ch := c.pending[in.ID]
		delete(c.pending, in.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- in.response // buffered
		}
	}
}

// writeLoop writes request lines. A call gives up on a request before it
// reaches writeLoop, never halfway through a line.
func (c *Client) writeLoop() {
	for {
		select {
		case <-c.done:
			return
		case line := <-c.writes:
			c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := c.conn.Write(line); err != nil {
				c.fail(fmt.Errorf("%w: %w", ErrClosed, err))
				return
			}
		}
	}
}

// call sends one request and decodes its result into result (if not nil).
func (c *Client) call(ctx context.Context, method string, params, result any) error {
	req := request{Method: method}
	if params != nil {
		raw, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("encoding %s params: %w", method, err)
		}
		req.Params = raw
	}
	ch := make(chan response, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.nextID++
	req.ID = c.nextID
	c.pending[req.ID] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, req.ID)
		c.mu.Unlock()
	}

	line, err := json.Marshal(req)
	if err != nil {
		forget()
		return err
	}
	select {
	case c.writes <- append(line, '\n'):
	case <-ctx.Done():
		forget()
		return ctx.Err()
	case <-c.done:
		return c.closedError()
	}

	var resp response
	select {
	case resp = <-ch:
	case <-ctx.Done():
		forget()
		return ctx.Err()
	case <-c.done:
		select {
		case resp = <-ch: // answered just before the end
		default:
			return c.closedError()
		}
	}
	if resp.Error != nil {
		return resp.Error
	}
	if result != nil {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("decoding the %s result: %s", method, jsonProblem(err))
		}
	}
	return nil
}

// roundTrip sends one request on a connection no other goroutine uses and
// reads its response.
func roundTrip(ctx context.Context, nc net.Conn, r *bufio.Reader, method string, params any) (json.RawMessage, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	line, err := json.Marshal(request{ID: 1, Method: method, Params: raw})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer func() {
		if stop() {
			nc.SetDeadline(time.Time{})
		}
	}()
	if _, err := nc.Write(append(line, '\n')); err != nil {
		return nil, ctxOr(ctx, err)
	}
	for {
		line, err := readLine(r, maxResponseSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, ErrClosed
			}
			return nil, ctxOr(ctx, err)
		}
		var in incoming
		if err := json.Unmarshal(line, &in); err != nil {
			return nil, fmt.Errorf("malformed response from the daemon: %s", jsonProblem(err))
		}
		if in.Event != nil || in.ID != 1 {
			continue
		}
		if in.Error != nil {
			return nil, in.Error
		}
		return in.Result, nil
	}
}

// ctxOr returns ctx's error if it has ended (it interrupted the I/O),
// else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Subscribe opens a connection that streams events until ctx ends, the
// Client is closed or the daemon stops; then the channel is closed.
func (c *Client) Subscribe(ctx context.Context, group string) (<-chan Event, error) {
	select {
	case <-c.done:
		return nil, c.closedError()
	default:
	}
	nc, r, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := roundTrip(ctx, nc, r, MethodSubscribe, subscribeParams{Group: group}); err != nil {
		nc.Close()
		return nil, err
	}
	events := make(chan Event, 64)
	ended := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-c.done:
		case <-ended:
		}
		nc.Close()
	}()
	go func() {
		defer close(events)
		defer close(ended)
		for {
			line, err := readLine(r, maxResponseSize)
			if err != nil {
				return
			}
			var in incoming
			if json.Unmarshal(line, &in) != nil || in.Event == nil {
				continue
			}
			select {
			case events <- *in.Event:
			case <-ctx.Done():
				return
			case <-c.done:
				return
			}
		}
	}()
	return events, nil
}
