package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// badger repeats a warning or an error for every key it cannot read: a
// damaged value log made one chaos run log 489 lines of "Unable to read"
// in a few seconds, which buries what the node says about the damage.
// So each of badger's messages (told apart by its format string) logs at
// most badgerBurst lines per badgerWindow at warning level and above;
// the first line after a quiet window says how many were left out.
const (
	badgerBurst  = 5
	badgerWindow = time.Minute
	// badgerFormats bounds the table of formats seen (badger has a few
	// hundred log call sites; the table resets when full).
	badgerFormats = 512
)

// badgerLogger sends badger's messages to slog; its informational chatter
// goes to debug level, and its warnings and errors are rate-limited.
type badgerLogger struct {
	l   *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	recent map[string]*logWindow
}

type logWindow struct {
	start      time.Time
	logged     int
	suppressed int
}

func newBadgerLogger(l *slog.Logger) *badgerLogger {
	return &badgerLogger{l: l, now: time.Now, recent: map[string]*logWindow{}}
}

func (b *badgerLogger) logf(level slog.Level, format string, args ...any) {
	if !b.l.Enabled(context.Background(), level) {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	if level < slog.LevelWarn {
		b.l.Log(context.Background(), level, msg, "component", "badger")
		return
	}
	left, ok := b.allow(format)
	if !ok {
		return
	}
	if left > 0 {
		b.l.Log(context.Background(), level, msg, "component", "badger", "suppressed_before", left)
		return
	}
	b.l.Log(context.Background(), level, msg, "component", "badger")
}

// allow reports whether a line of this format may be logged now, and how
// many lines of it the last window left out.
func (b *badgerLogger) allow(format string) (left int, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	w := b.recent[format]
	if w == nil || now.Sub(w.start) >= badgerWindow {
		if w == nil && len(b.recent) >= badgerFormats {
			clear(b.recent)
		}
		if w != nil {
			left = w.suppressed
		}
		w = &logWindow{start: now}
		b.recent[format] = w
	}
	if w.logged >= badgerBurst {
		w.suppressed++
		return 0, false
	}
	w.logged++
	return left, true
}

func (b *badgerLogger) Errorf(f string, a ...any)   { b.logf(slog.LevelError, f, a...) }
func (b *badgerLogger) Warningf(f string, a ...any) { b.logf(slog.LevelWarn, f, a...) }
func (b *badgerLogger) Infof(f string, a ...any)    { b.logf(slog.LevelDebug, f, a...) }
func (b *badgerLogger) Debugf(f string, a ...any)   { b.logf(slog.LevelDebug-4, f, a...) }
