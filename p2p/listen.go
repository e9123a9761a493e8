package p2p

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// checkListenFree refuses listen addresses with a fixed port that another
// process (another node, say) already listens on. libp2p's TCP transport
// sets SO_REUSEPORT on its listeners, so that its dials leave from the
// listen port (hole punching needs it), and two nodes given the same
// address would both listen on it, each getting some of the connections.
// A plain bind, without the option, fails on a port in use: it is made and
// closed at once before the host listens.
func checkListenFree(addrs []string) error {
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue // the host reports it
		}
		if len(m) > 2 {
			m = m[:2] // the IP address and the TCP or UDP port (QUIC runs on UDP)
		}
		na, err := manet.ToNetAddr(m)
		if err != nil {
			continue // not TCP or UDP over IP (QUIC's UDP is checked below)
		}
		var closeFn func() error
		switch a := na.(type) {
		case *net.TCPAddr:
			if a.Port == 0 {
				continue
			}
			l, err := net.ListenTCP("tcp", a)
			if err != nil {
				return inUse(s, err)
			}
			closeFn = l.Close
		case *net.UDPAddr:
			if a.Port == 0 {
				continue
			}
			c, err := net.ListenUDP("udp", a)
			if err != nil {
				return inUse(s, err)
			}
			closeFn = c.Close
		default:
			continue
		}
		closeFn()
	}
	return nil
}

func inUse(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: %s", ErrAddressInUse, addr)
	}
	return fmt.Errorf("p2p: listen on %s: %w", addr, err)
}
