package ordering

import (
	"fmt"
	"testing"
)

// TestBufferIsBoundedPerSenderAndGroup: envelopes for epochs not known yet
// are kept within MaxBufferedBytes for the group and MaxBufferedPerSender
// for one member; a flood from one member pushes out its own envelopes,
// not those of the others.
func TestBufferIsBoundedPerSenderAndGroup(t *testing.T) {
	l := &Loop{cfg: (&Config{MaxBufferedBytes: 1 << 20, MaxBufferedPerSender: 256 << 10}).withDefaults()}
	env := func(sender string, i, size int) []byte {
		data := make([]byte, size)
		copy(data, fmt.Sprintf("%s %d", sender, i))
		return data
	}
	// Three members each buffer a little.
	for _, m := range []string{"alice", "bob", "carol"} {
		for i := range 4 {
			l.buffer(m, &Envelope{Kind: KindApplication}, env(m, i, 10<<10))
		}
	}
	// One floods: 1,000 envelopes of 64 KiB, 64 MiB in all.
	for i := range 1000 {
		l.buffer("mallory", &Envelope{Kind: KindApplication}, env("mallory", i, 64<<10))
		if l.bufferedBytes > l.cfg.MaxBufferedBytes || l.bufferedBy["mallory"] > l.cfg.MaxBufferedPerSender {
			t.Fatalf("after %d envelopes: %d bytes buffered, %d from mallory", i+1, l.bufferedBytes, l.bufferedBy["mallory"])
		}
	}
	for _, m := range []string{"alice", "bob", "carol"} {
		if got := l.bufferedBy[m]; got != 40<<10 {
			t.Errorf("%s: %d bytes buffered after the flood, want %d", m, got, 40<<10)
		}
	}
	// The flood's newest envelopes are the ones kept.
	last := l.buffered[len(l.buffered)-1]
	if want := env("mallory", 999, 64<<10); string(last.data[:12]) != string(want[:12]) {
		t.Errorf("last buffered envelope %q, want mallory's last", last.data[:12])
	}
	// Many members at once: the group bound holds, the biggest sender
	// gives way first.
	for i := range 200 {
		m := fmt.Sprintf("m%d", i%20)
		l.buffer(m, &Envelope{Kind: KindApplication}, env(m, i, 32<<10))
		if l.bufferedBytes > l.cfg.MaxBufferedBytes {
			t.Fatalf("%d bytes buffered, bound %d", l.bufferedBytes, l.cfg.MaxBufferedBytes)
		}
	}
	if l.bufferedBy["mallory"] > 64<<10 {
		t.Errorf("the flooding sender still holds %d bytes once others need room", l.bufferedBy["mallory"])
	}
	// An envelope larger than a sender's share is not kept at all.
	n := len(l.buffered)
	l.buffer("alice", &Envelope{Kind: KindApplication}, make([]byte, 300<<10))
	if len(l.buffered) != n {
		t.Errorf("an envelope over the per-sender bound was kept")
	}
	total := 0
	for _, b := range l.buffered {
		total += len(b.data)
	}
	if total != l.bufferedBytes {
		t.Errorf("bufferedBytes %d, the envelopes add up to %d", l.bufferedBytes, total)
	}
}
