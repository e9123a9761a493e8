package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Timeouts and limits of a server connection.
const (
	// writeTimeout bounds one line's write: a client that stops reading
	// for longer is dropped.
	writeTimeout = 10 * time.Second
	// authTimeout is how long a TCP client has to authenticate.
	authTimeout = 10 * time.Second
	// maxInFlight bounds the requests a connection runs at once; the
	// server reads no further request from it until one ends.
	maxInFlight = 64
	// closeGrace is how long Close lets running requests finish.
	closeGrace = 5 * time.Second
	// minTokenLen is the shortest TCP token ListenTCP accepts.
	minTokenLen = 16
)

// A Server serves a Backend on a unix socket and, optionally, on loopback
// TCP. NewServer starts nothing: ListenUnix and ListenTCP start serving,
// Shutdown and Close stop.
type Server struct {
	backend Backend
	log     *slog.Logger

	// ctx is the parent of every connection's context; cancel forces
	// the running requests to end.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners []*listener
	conns     map[*conn]struct{}
	nextConn  uint64

	wg       sync.WaitGroup // accept loops and connections
	stopOnce sync.Once
	stopped  chan struct{} // closed when every goroutine has ended
}

// listener is one address the server accepts connections on.
type listener struct {
	net.Listener
	token   string       // the bearer token its clients must send; "" for none
	cleanup func() error // removes the socket file, if any
}

// NewServer returns a server of b that logs to logger (nil: no logs).
func NewServer(b Backend, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		backend: b,
		log:     logger,
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[*conn]struct{}),
		stopped: make(chan struct{}),
	}
}

// ListenUnix starts serving on a unix socket at path, created with mode
// 0600 so only this user can connect. It returns an error wrapping
// ErrAlreadyRunning if another server answers there, and replaces a
// stale socket file that nothing answers on; any other file there is left
// alone and an error returned. The directory must exist. Close removes
// the socket.
func (s *Server) ListenUnix(path string) error {
	ln, cleanup, err := listenUnix(path)
	if err != nil {
		return err
	}
	if err := s.serve(&listener{Listener: ln, cleanup: cleanup}); err != nil {
		return err
	}
	s.log.Info("api: listening", "socket", path)
	return nil
}

// ListenTCP starts serving on addr, which must be a loopback address
// ("127.0.0.1:0" picks a free port), and returns the address it listens
// on. Clients must send token (at least 16 characters; see NewToken)
// before anything else; the token is compared in constant time and never
// logged.
func (s *Server) ListenTCP(addr, token string) (net.Addr, error) {
	if len(token) < minTokenLen {
		return nil, fmt.Errorf("api: the TCP token must have at least %d characters", minTokenLen)
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if err := s.serve(&listener{Listener: ln, token: token, cleanup: func() error { return nil }}); err != nil {
		return nil, err
	}
	s.log.Info("api: listening", "tcp", ln.Addr().String())
	return ln.Addr(), nil
}

// NewToken returns a random bearer token for ListenTCP: 32 bytes from
// crypto/rand, hex-encoded.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// checkLoopback accepts host:port where host is a loopback IP address or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api: TCP address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("api: TCP address %q is not a loopback address (use 127.0.0.1 or [::1])", addr)
	}
	return nil
}

// serve starts accepting connections on l.
func (s *Server) serve(l *listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		l.Close()
		l.cleanup()
		return fmt.Errorf("api: %w", net.ErrClosed)
	}
	s.listeners = append(s.listeners, l)
	s.wg.Add(1)
	go s.accept(l)
	return nil
}

// accept accepts connections on l until it is closed.
func (s *Server) accept(l *listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// Out of descriptors or similar: wait and retry.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("api: accept failed", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			s.log.Error("api: accept failed; the listener is stopped", "err", err)
			return
		}
		backoff = 0
		c := s.track(nc, l.token)
		if c == nil {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// track registers a new connection, or returns nil once the server is
// closing.
func (s *Server) track(nc net.Conn, token string) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	s.nextConn++
	c := newConn(s, nc, token, s.nextConn)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops the server gracefully: it closes the listeners and
// removes the socket file, stops reading requests, ends the event
// streams, and waits for the running requests to answer. When ctx ends
// first, it cancels them, closes every connection and returns ctx's
// error once all have ended. Shutdown may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		listeners := s.listeners
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, l := range listeners {
			if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
			if err := l.cleanup(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, c := range conns {
			c.stopReading()
		}
		go func() {
			s.wg.Wait()
			s.cancel()
			close(s.stopped)
		}()
	})
	select {
	case <-s.stopped:
		return errors.Join(errs...)
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	<-s.stopped
	return errors.Join(append(errs, ctx.Err())...)
}

// Close shuts the server down, giving running requests a few seconds to
// answer before canceling them.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	return s.Shutdown(ctx)
}

// tokenEqual compares a client's token with the server's in constant
// time; hashing first hides the length too.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
