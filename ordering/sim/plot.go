package sim

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Series is one named set of points of a chart, drawn as a line with
// markers or as bars. Points whose X or Y is not finite are skipped.
type Series struct {
	Name string
	X, Y []float64
	Bars bool
}

// Chart is one panel of a figure.
type Chart struct {
	Title, XLabel, YLabel string
	// LogX draws the x axis on a log scale (x must be positive).
	LogX bool
	// DataTicks puts the x ticks at the data's x values (group sizes,
	// seeds) instead of at round numbers.
	DataTicks bool
	Series    []Series
}

// Figure layout, in SVG user units.
const (
	figWidth    = 800
	panelHeight = 340
	marginLeft  = 80
	marginRight = 180 // the legend is drawn here
	marginTop   = 40
	marginBot   = 56
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// ErrBadChart is returned by WriteSVG for a chart it cannot draw.
var ErrBadChart = errors.New("sim: cannot draw chart")

// WriteSVG draws the charts as panels stacked in one SVG image: axes with
// ticks and labels, one colour per series and a legend.
func WriteSVG(w io.Writer, charts ...Chart) error {
	if len(charts) == 0 {
		return fmt.Errorf("%w: no charts", ErrBadChart)
	}
	for _, c := range charts {
		for _, s := range c.Series {
			if len(s.X) != len(s.Y) {
				return fmt.Errorf("%w: series %q has %d x and %d y values", ErrBadChart, s.Name, len(s.X), len(s.Y))
			}
		}
	}
	p := &svgPrinter{w: w}
	height := panelHeight * len(charts)
	p.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		figWidth, height, figWidth, height)
	p.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	for i, c := range charts {
		p.printf(`<g class="panel" transform="translate(0,%d)">`+"\n", i*panelHeight)
		p.chart(c)
		p.printf("</g>\n")
	}
	p.printf("</svg>\n")
	return p.err
}

type svgPrinter struct {
	w   io.Writer
	err error
}

func (p *svgPrinter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// esc escapes text for an XML attribute or element.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // writes to a Builder never fail
	return b.String()
}

// scale maps data values to pixels along one axis.
type scale struct {
	lo, hi     float64 // data range (log10 of it when log)
	from, to   float64 // pixel range
	log        bool
	ticks      []float64
	tickLabels []string
}

func (s *scale) pos(v float64) float64 {
	if s.log {
		v = math.Log10(v)
	}
	return s.from + (v-s.lo)/(s.hi-s.lo)*(s.to-s.from)
}

func (p *svgPrinter) chart(c Chart) {
	x0, x1 := float64(marginLeft), float64(figWidth-marginRight)
	y0, y1 := float64(panelHeight-marginBot), float64(marginTop) // y grows downwards
	var xs, ys []float64
	bars := 0
	for _, s := range c.Series {
		if s.Bars {
			bars++
		}
		for i := range s.X {
			if ok(s.X[i], c.LogX) && ok(s.Y[i], false) {
				xs = append(xs, s.X[i])
				ys = append(ys, s.Y[i])
			}
		}
	}
	xsc := xScale(xs, c.LogX, c.DataTicks, bars > 0, x0, x1)
	ysc := yScale(ys, y0, y1)

	p.printf(`<text x="%.1f" y="24" text-anchor="middle" font-size="14" font-weight="bold">%s</text>`+"\n", (x0+x1)/2, esc(c.Title))
	// Axes, grid and ticks.
	p.printf(`<g class="axes" stroke="#333" fill="#333">` + "\n")
	for i, t := range ysc.ticks {
		y := ysc.pos(t)
		p.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x1, y)
		p.printf(`<text x="%.1f" y="%.1f" text-anchor="end" stroke="none">%s</text>`+"\n", x0-6, y+4, ysc.tickLabels[i])
	}
	for i, t := range xsc.ticks {
		x := xsc.pos(t)
		p.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x, y0, x, y0+5)
		p.printf(`<text x="%.1f" y="%.1f" text-anchor="middle" stroke="none">%s</text>`+"\n", x, y0+18, xsc.tickLabels[i])
	}
	p.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x0, y0, x1, y0)
	p.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", x0, y0, x0, y1)
	p.printf(`<text x="%.1f" y="%.1f" text-anchor="middle" stroke="none">%s</text>`+"\n", (x0+x1)/2, y0+40, esc(c.XLabel))
	p.printf(`<text transform="translate(20,%.1f) rotate(-90)" text-anchor="middle" stroke="none">%s</text>`+"\n", (y0+y1)/2, esc(c.YLabel))
	p.printf("</g>\n")

	// Series.
	barWidth := 0.0
	if bars > 0 {
		barWidth = 0.7 * minGap(xsc) / float64(bars)
	}
	bar := 0
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		p.printf(`<g class="series" data-name="%s" fill="%s" stroke="%s">`+"\n", esc(s.Name), color, color)
		var pts []string
		for j := range s.X {
			if !ok(s.X[j], c.LogX) || !ok(s.Y[j], false) {
				continue
			}
			x, y := xsc.pos(s.X[j]), ysc.pos(s.Y[j])
			if s.Bars {
				left := x - 0.35*minGap(xsc) + float64(bar)*barWidth
				base := ysc.pos(math.Max(ysc.lo, 0))
				p.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" stroke="none"/>`+"\n", left, math.Min(y, base), barWidth, math.Abs(base-y))
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			p.printf(`<circle cx="%.1f" cy="%.1f" r="3"/>`+"\n", x, y)
		}
		if len(pts) > 1 {
			p.printf(`<polyline fill="none" stroke-width="2" points="%s"/>`+"\n", strings.Join(pts, " "))
		}
		if s.Bars {
			bar++
		}
		p.printf("</g>\n")
	}
	// Legend, right of the plot area.
	p.printf(`<g class="legend">` + "\n")
	for i, s := range c.Series {
		y := y1 + 8 + float64(i)*16
		p.printf(`<rect x="%.1f" y="%.1f" width="12" height="10" fill="%s"/>`+"\n", x1+16, y-9, palette[i%len(palette)])
		p.printf(`<text x="%.1f" y="%.1f">%s</text>`+"\n", x1+34, y, esc(s.Name))
	}
	p.printf("</g>\n")
}

func ok(v float64, positive bool) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && (!positive || v > 0)
}

// xScale spans the x values with a margin; bars get half a gap on each
// side so that they stay inside the axes.
func xScale(xs []float64, log, dataTicks, bars bool, from, to float64) *scale {
	s := &scale{from: from, to: to, log: log}
	vals := slices.Clone(xs)
	slices.Sort(vals)
	vals = slices.Compact(vals)
	if len(vals) == 0 {
		vals = []float64{1}
	}
	t := vals
	if log {
		t = make([]float64, len(vals))
		for i, v := range vals {
			t[i] = math.Log10(v)
		}
	}
	lo, hi := t[0], t[len(t)-1]
	if hi == lo {
		lo, hi = lo-1, hi+1
	}
	pad := 0.05 * (hi - lo)
	if bars {
		gap := hi - lo
		for i := 1; i < len(t); i++ {
			gap = math.Min(gap, t[i]-t[i-1])
		}
		pad = gap / 2
	}
	s.lo, s.hi = lo-pad, hi+pad
	if dataTicks || log {
		s.ticks = vals
		for _, v := range vals {
			s.tickLabels = append(s.tickLabels, strconv.FormatFloat(v, 'g', -1, 64))
		}
		return s
	}
	s.ticks, s.tickLabels = niceTicks(s.lo, s.hi)
	return s
}

// minGap is the least pixel distance between two x ticks, or the plot
// width for one tick.
func minGap(s *scale) float64 {
	gap := math.Abs(s.to - s.from)
	for i := 1; i < len(s.ticks); i++ {
		gap = math.Min(gap, math.Abs(s.pos(s.ticks[i])-s.pos(s.ticks[i-1])))
	}
	return gap
}

// yScale starts at zero (or below, for negative values) and ends on a
// round tick above the largest value.
func yScale(ys []float64, from, to float64) *scale {
	lo, hi := 0.0, 0.0
	for _, y := range ys {
		lo, hi = math.Min(lo, y), math.Max(hi, y)
	}
	if hi == lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / tickCount)
	s := &scale{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi/step) * step, from: from, to: to}
	s.ticks, s.tickLabels = niceTicks(s.lo, s.hi)
	return s
}

// tickCount is about how many ticks an axis gets.
const tickCount = 6

// niceStep rounds a step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// niceTicks returns round ticks within [lo, hi] and their labels.
func niceTicks(lo, hi float64) ([]float64, []string) {
	step := niceStep((hi - lo) / tickCount)
	decimals := max(0, int(-math.Floor(math.Log10(step))))
	var ticks []float64
	var labels []string
	for i := math.Ceil(lo / step); i*step <= hi+step*1e-9; i++ {
		v := i*step + 0 // no "-0"
		ticks = append(ticks, v)
		labels = append(labels, strconv.FormatFloat(v, 'f', decimals, 64))
	}
	return ticks, labels
}
