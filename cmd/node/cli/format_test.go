package cli

import (
	"strings"
	"testing"
	"time"
)

func TestCleanDisarmsTerminalControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bob", "bob"},
		{"héllo 👋🏽 世界", "héllo 👋🏽 世界"},
		{"\x1b[2Jwiped", "\uFFFD[2Jwiped"},
		{"a\nb\tc\rd", "a\uFFFDb\uFFFDc\uFFFDd"},
		{"\u202Egnp.exe", "\uFFFDgnp.exe"},
		{"bell\x07", "bell\uFFFD"},
		{"c1\u009b31m", "c1\uFFFD31m"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got, want := cleanText("one\r\ntwo\tthree\x1b"), "one\ntwo    three\uFFFD"; got != want {
		t.Errorf("cleanText = %q, want %q", got, want)
	}
}

func TestShortTime(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 0, 0, time.Local)
	tests := []struct {
		t    time.Time
		want string
	}{
		{now.Add(-time.Hour), "14:09"},
		{time.Date(2025, 3, 12, 8, 0, 0, 0, time.Local), "Wed 08:00"},
		{time.Date(2025, 1, 2, 8, 0, 0, 0, time.Local), "Jan 2 08:00"},
		{time.Date(2024, 12, 31, 23, 59, 0, 0, time.Local), "2024-12-31 23:59"},
		{now.Add(48 * time.Hour), "Mar 16 15:09"}, // a sender's clock ahead
		{time.Time{}, "-"},
	}
	for _, tt := range tests {
		if got := shortTime(tt.t, now); got != tt.want {
			t.Errorf("shortTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		100 << 20: "100.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestProgressBarOnAPipeWritesTenths(t *testing.T) {
	var out strings.Builder
	bar := newProgressBar(&out, "f\x1b.bin")
	for done := int64(0); done <= 1000; done += 7 {
		bar.update(done, 1000)
	}
	bar.update(1000, 1000)
	bar.end()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 11 || !strings.HasPrefix(lines[0], "f\uFFFD.bin [------------------------------]   0%") ||
		!strings.HasSuffix(lines[10], "100% 1000 B / 1000 B") {
		t.Errorf("progress on a pipe:\n%s", out.String())
	}
}

func TestParseTakesFlagsAnywhere(t *testing.T) {
	tests := []struct {
		args []string
		pos  string
		file string
	}{
		{[]string{"g", "--file", "f"}, "g", "f"},
		{[]string{"--file", "f", "g"}, "g", "f"},
		{[]string{"g", "a", "--file=f", "b"}, "g a b", "f"},
		{[]string{"g", "--", "--file", "f"}, "g --file f", ""},
		{[]string{"g", "-", "x"}, "g - x", ""},
	}
	for _, tt := range tests {
		c := newCommand("send", "", false, nil, nil)
		file := c.fs.String("file", "", "")
		pos, err := c.parse(tt.args, 0, -1, "")
		if err != nil || strings.Join(pos, " ") != tt.pos || *file != tt.file {
			t.Errorf("parse(%q) = %q, file %q, %v; want %q, file %q", tt.args, pos, *file, err, tt.pos, tt.file)
		}
	}
}

func TestOnOffViaSaysRelayed(t *testing.T) {
	for _, tc := range []struct {
		online bool
		via    string
		want   string
	}{
		{true, "direct", "online"},
		{true, "relay", "online via relay"},
		{true, "", "online"},
		{false, "", "offline"},
	} {
		if got := onOffVia(tc.online, tc.via); got != tc.want {
			t.Errorf("onOffVia(%v, %q) = %q, want %q", tc.online, tc.via, got, tc.want)
		}
	}
}
