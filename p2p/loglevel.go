package p2p

import (
	"context"
	"log/slog"
)

// gossipsub logs every RPC sent and received and every message validated
// at debug level: thousands of lines a minute that drown what the node
// itself logs at debug. The node passes them on only from Info up, unless
// WithPubSubDebug asks for all of them.

// WithPubSubDebug passes gossipsub's own debug lines (each RPC sent and
// received, each validation) to the node's logger. Off by default.
func WithPubSubDebug(on bool) Option {
	return func(n *Node) error {
		n.pubsubDebug = on
		return nil
	}
}

// pubsubLogger is the logger gossipsub gets.
func (n *Node) pubsubLogger() *slog.Logger {
	l := n.log.With("system", "pubsub")
	if n.pubsubDebug {
		return l
	}
	return slog.New(atLeast{l.Handler(), slog.LevelInfo})
}

// atLeast is a handler that passes on records of min and above.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{h.Handler.WithAttrs(as), h.min}
}

func (h atLeast) WithGroup(name string) slog.Handler {
	return atLeast{h.Handler.WithGroup(name), h.min}
}
