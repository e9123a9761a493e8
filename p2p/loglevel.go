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
	h := n.log.With("system", "pubsub").Handler()
	if !n.pubsubDebug {
		h = atLeast{h, slog.LevelInfo}
	}
	return slog.New(demoted{h})
}

// demotedMessages are gossipsub warnings that say nothing is wrong, logged
// at debug instead. "error bumping delivery tag": the connection manager's
// queue of tag changes (128) is full during a burst of deliveries, so one
// peer's delivery score for connection pruning is not raised; members'
// connections are protected by the node anyway. A long chaos run logged
// hundreds of them per daemon and nothing else at WARN.
var demotedMessages = map[string]bool{
	"error bumping delivery tag": true,
}

// demoted is a handler that logs demotedMessages at debug.
type demoted struct{ slog.Handler }

func (h demoted) Handle(ctx context.Context, r slog.Record) error {
	if demotedMessages[r.Message] && r.Level > slog.LevelDebug {
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h demoted) WithAttrs(as []slog.Attr) slog.Handler { return demoted{h.Handler.WithAttrs(as)} }

func (h demoted) WithGroup(name string) slog.Handler { return demoted{h.Handler.WithGroup(name)} }

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
