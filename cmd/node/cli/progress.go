package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// progressBar draws a transfer's progress on a terminal, redrawing one
// line; on anything else (a file, a pipe) it writes a line at every
// tenth of the way, so logs stay short.
type progressBar struct {
	w    io.Writer
	tty  bool
	name string
	last string // the line last drawn (tty)
	step int64  // the tenth last written (not tty)
}

const barWidth = 30

func newProgressBar(w io.Writer, name string) *progressBar {
	return &progressBar{w: w, tty: isTerminal(w), name: clean(name), step: -1}
}

// isTerminal tells whether w is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// update shows done of total bytes.
func (p *progressBar) update(done, total int64) {
	frac := 1.0
	if total > 0 {
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	filled := int(frac * barWidth)
	line := fmt.Sprintf("%s [%s%s] %3d%% %s / %s", p.name, strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled),
		int(frac*100), size(done), size(total))
	if p.tty {
		if line != p.last {
			fmt.Fprintf(p.w, "\r%s\x1b[K", line)
			p.last = line
		}
		return
	}
	if step := int64(frac * 10); step > p.step {
		fmt.Fprintln(p.w, line)
		p.step = step
	}
}

// end ends the bar's line on a terminal.
func (p *progressBar) end() {
	if p.tty && p.last != "" {
		fmt.Fprintln(p.w)
		p.last = ""
	}
}
