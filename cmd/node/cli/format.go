package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// newTable returns a writer that aligns tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// clean makes text from other people safe to print on a terminal: every
// control character (escape sequences, tabs and newlines included) and
// every bidirectional override becomes U+FFFD, so a name or message
// cannot move the cursor, recolor the screen or disguise itself.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// cleanText is clean for a message body: newlines are kept, tabs become
// spaces.
func cleanText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = clean(strings.ReplaceAll(l, "\t", "    "))
	}
	return strings.Join(lines, "\n")
}

func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') || r == '\u200E' || r == '\u200F' || r == '\u061C'
}

// shortTime formats t in local time, as short as is clear next to now:
// "15:04" today, "Mon 15:04" this week, "Jan 2 15:04" this year, else
// "2006-01-02 15:04".
func shortTime(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t, now = t.Local(), now.Local()
	ty, tm, td := t.Date()
	ny, nm, nd := now.Date()
	switch {
	case ty == ny && tm == nm && td == nd:
		return t.Format("15:04")
	case now.Sub(t) < 6*24*time.Hour && now.After(t):
		return t.Format("Mon 15:04")
	case ty == ny:
		return t.Format("Jan 2 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

// size formats a byte count for a person: 512 B, 1.5 KiB, 2.4 MiB.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// shortID abbreviates a hex id for people: its first 8 digits.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// onOff shows an online flag.
func onOff(online bool) string {
	if online {
		return "online"
	}
	return "offline"
}

// onOffVia shows an online flag and, for a peer reached only through a
// relay, says so ("online via relay").
func onOffVia(online bool, via string) string {
	if online && via == "relay" {
		return "online via relay"
	}
	return onOff(online)
}
